/**
 * Training throughput on the chosen backend, and what each of our wasm kernels buys.
 *
 *   npx tsx bench/kernels.ts            # full run (about 2 minutes on one core)
 *   npx tsx bench/kernels.ts --quick    # fewer repetitions
 *
 * Prints a table and, last, one JSON line with every figure. Timings are medians of whole training steps
 * (forward, backward, optimizer update) at 96x96, batch 32, on random images.
 */
import * as tf from '@tensorflow/tfjs';
import type { Architecture } from '../src/ml/models/architecture-names';
import { buildModel, createOptimizer, estimateFlops } from '../src/ml/models/architectures';
import { wasmTrainingKernelNames, withShippedKernel } from '../src/ml/training/kernels';
import { initRuntime } from '../src/ml/runtime';
import { configureMl } from '../src/ml/settings';
import { loadMlSettings } from '../src/config';

const INPUT_SIZE = 96;
const BATCH = 32;
const quick = process.argv.includes('--quick');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median milliseconds of `repetitions` runs after one warm-up run. */
export function timeMs(run: () => void, repetitions: number): number {
  run(); // warm-up: XNNPACK operator creation, heap growth, JIT
  const times: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    const start = performance.now();
    run();
    times.push(performance.now() - start);
  }
  return median(times);
}

function trainingStep(arch: Architecture) {
  return trainingStepOf(buildModel(arch, INPUT_SIZE, 1), createOptimizer(arch, 0.001));
}

/**
 * One training step (forward, backward, update) and one prediction of `model` on a fixed random batch of
 * 32 images; `dispose` releases the model and optimizer too. Used by bench/index.ts for the issue's
 * reference network, which is not one of our architectures.
 */
export function trainingStepOf(model: tf.LayersModel, optimizer: tf.Optimizer) {
  const x = tf.randomUniform([BATCH, INPUT_SIZE, INPUT_SIZE, 3], 0, 1, 'float32', 1);
  const y = tf.tensor2d(
    Array.from({ length: BATCH }, (_, i) => i % 2),
    [BATCH, 1],
  );
  const step = () =>
    tf.tidy(() => {
      optimizer.minimize(
        () => tf.losses.logLoss(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      );
    });
  const predict = () => tf.tidy(() => void (model.predict(x) as tf.Tensor).dataSync());
  const dispose = () => {
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  };
  return { model, step, predict, dispose };
}

/** Shapes where dx is computed in our two benchmark networks (input to the convolution, filter). */
type Shape4D = [number, number, number, number];
const BACKPROP_INPUT_CASES: Array<{
  label: string;
  dy: Shape4D;
  filter: Shape4D;
  input: Shape4D;
  pad: 'same' | 'valid';
}> = [
  {
    label: 'seed block 1, 92->94x94x64',
    dy: [BATCH, 92, 92, 64],
    filter: [3, 3, 64, 64],
    input: [BATCH, 94, 94, 64],
    pad: 'valid',
  },
  {
    label: 'seed block 3, 19->21x21x64',
    dy: [BATCH, 19, 19, 96],
    filter: [3, 3, 64, 96],
    input: [BATCH, 21, 21, 64],
    pad: 'valid',
  },
  {
    label: 'lymphonet block 2, 48x48x16',
    dy: [BATCH, 48, 48, 32],
    filter: [3, 3, 16, 32],
    input: [BATCH, 48, 48, 16],
    pad: 'same',
  },
  {
    label: 'lymphonet block 4, 12x12x64',
    dy: [BATCH, 12, 12, 96],
    filter: [3, 3, 64, 96],
    input: [BATCH, 12, 12, 64],
    pad: 'same',
  },
];

async function main() {
  configureMl(loadMlSettings());
  const runtime = await initRuntime();
  const figures: Record<string, unknown> = { runtime, inputSize: INPUT_SIZE, batchSize: BATCH };
  console.log(`runtime: ${JSON.stringify(runtime)}; ${INPUT_SIZE}x${INPUT_SIZE}, batch ${BATCH}`);

  const architectures: Architecture[] = ['lymphonet', 'seed-2x2x1x1', 'vanilla'];
  const training: Record<string, unknown> = {};
  for (const arch of architectures) {
    const bench = trainingStep(arch);
    const heavy = arch === 'seed-2x2x1x1';
    const stepMs = timeMs(bench.step, quick || heavy ? 3 : 8);
    const predictMs = timeMs(bench.predict, quick ? 3 : 5);
    const row = {
      gflopsPerImageForward: estimateFlops(bench.model) / 1e9,
      parameters: bench.model.countParams(),
      stepMs,
      trainImagesPerSecond: (BATCH * 1000) / stepMs,
      predictImagesPerSecond: (BATCH * 1000) / predictMs,
    };
    training[arch] = row;
    console.log(
      `${arch.padEnd(13)} train ${row.trainImagesPerSecond.toFixed(1).padStart(6)} img/s (${stepMs.toFixed(0)} ms/step)  ` +
        `predict ${row.predictImagesPerSecond.toFixed(0).padStart(5)} img/s  ${row.gflopsPerImageForward.toFixed(3)} GFLOP/img  ${row.parameters} params`,
    );
    bench.dispose();
  }
  figures.training = training;

  if (runtime.backend !== 'wasm') {
    console.log(JSON.stringify(figures));
    return;
  }

  console.log('\nConv2DBackpropInput, ours vs the shipped wasm kernel:');
  const backpropInput: Record<string, unknown>[] = [];
  for (const c of BACKPROP_INPUT_CASES) {
    const dy = tf.randomNormal(c.dy, 0, 1, 'float32', 2) as tf.Tensor4D;
    const filter = tf.randomNormal(c.filter, 0, 1, 'float32', 3) as tf.Tensor4D;
    const run = () => tf.tidy(() => void tf.conv2dTranspose(dy, filter, c.input, 1, c.pad).dataSync());
    const ours = timeMs(run, quick ? 2 : 4);
    const shipped = withShippedKernel('Conv2DBackpropInput', () => timeMs(run, quick ? 1 : 2));
    backpropInput.push({ case: c.label, oursMs: ours, shippedMs: shipped, speedup: shipped / ours });
    console.log(
      `  ${c.label.padEnd(30)} ours ${ours.toFixed(1).padStart(7)} ms  shipped ${shipped.toFixed(1).padStart(7)} ms  x${(shipped / ours).toFixed(1)}`,
    );
    tf.dispose([dy, filter]);
  }
  figures.conv2dBackpropInput = backpropInput;

  // What each replacement saves in a whole lymphonet step (Conv2DBackpropFilter has no shipped kernel).
  console.log('\nlymphonet step with one shipped kernel put back:');
  const bench = trainingStep('lymphonet');
  const swaps: Record<string, unknown>[] = [];
  for (const name of wasmTrainingKernelNames().filter((k) => k !== 'Conv2DBackpropFilter')) {
    const ours = timeMs(bench.step, quick ? 2 : 4);
    const shipped = withShippedKernel(name, () => timeMs(bench.step, quick ? 2 : 4));
    swaps.push({ kernel: name, oursStepMs: ours, shippedStepMs: shipped });
    console.log(
      `  ${name.padEnd(20)} ours ${ours.toFixed(0).padStart(5)} ms/step  shipped ${shipped.toFixed(0).padStart(5)} ms/step`,
    );
  }
  bench.dispose();
  figures.lymphonetStepWithShippedKernel = swaps;
  console.log(JSON.stringify(figures));
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
