// Jest's node environment with Node's own typed-array constructors, as it already does for ArrayBuffer and
// Uint8Array. Native addons create their arrays in Node's realm: onnxruntime-node's output tensors fail its
// own `instanceof Float32Array` check inside the test sandbox without this. Nothing else changes.
const { TestEnvironment } = require('jest-environment-node');

// Every training job fits its decisions on out-of-fold scores (src/ml/decisions): k folds x seeds networks
// besides the served one, 5 x 3 in production. Tests that run jobs check the mechanics, not the figures,
// with 2 folds x 1 seed (the workers the Lambda emulator spawns inherit this environment).
process.env.LYMPHOSCOPE_RECIPE_FOLDS ??= '2';
process.env.LYMPHOSCOPE_RECIPE_SEEDS ??= '1';
// Most job tests check one worker running a job whole; the parallel-folds tests set their own concurrency.
process.env.LYMPHOSCOPE_FOLD_CONCURRENCY ??= '0';

const TYPED_ARRAYS = [
  'Int8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
];

class NodeEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of TYPED_ARRAYS) this.global[name] = globalThis[name];
  }
}

module.exports = NodeEnvironment;
