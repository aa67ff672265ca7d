import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { recordRuntimeInfo, type RuntimeInfo } from './runtime-info';
import { mlSettings } from './settings';
import { registerWasmTrainingKernels } from './training/kernels';

export interface RuntimeOptions {
  /**
   * Directory holding the tfjs-backend-wasm `.wasm` binaries. A Lambda bundle copies them next to the
   * handler, where the package's own dist directory does not exist. Defaults to the configured one
   * (MlSettings.wasmDir), then to the installed package, then to the directory of the (bundled) module.
   */
  wasmDir?: string;
}

const WASM_BINARIES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm'];

let initialization: Promise<RuntimeInfo> | undefined;

/**
 * Chooses and initialises the TensorFlow.js backend once per process; concurrent callers share one
 * promise. A failed initialisation is not cached, so a caller may retry after fixing the cause.
 *
 * The cpu backend is never chosen silently: it trains a CNN at about 0.1 images/s, which would turn a
 * wasm problem into jobs that look alive and never finish. MlSettings.backend 'cpu' (LYMPHOSCOPE_ML_BACKEND)
 * forces it (tests use it as a reference); 'wasm' skips the tfjs-node probe. The settings are those given to
 * configureMl before this first call.
 */
export function initRuntime(opts: RuntimeOptions = {}): Promise<RuntimeInfo> {
  if (!initialization) {
    initialization = chooseBackend(opts).then(
      (info) => {
        recordRuntimeInfo(info);
        return info;
      },
      (error: unknown) => {
        initialization = undefined;
        throw error;
      },
    );
  }
  return initialization;
}

/** Live tensors in the engine, for leak checks. */
export function liveTensors(): number {
  return tf.memory().numTensors;
}

async function chooseBackend(opts: RuntimeOptions): Promise<RuntimeInfo> {
  const requested = mlSettings().backend;
  if (requested === 'cpu') {
    await activate('cpu');
    return { backend: 'cpu', tfjsVersion: tf.version.tfjs, simd: false, threads: 1 };
  }
  if (requested !== 'wasm' && loadNativeBackend()) {
    await activate('tensorflow');
    return { backend: 'tensorflow', tfjsVersion: tf.version.tfjs, simd: false, threads: cpus().length };
  }
  if (requested === 'tensorflow') {
    throw new Error(
      "LYMPHOSCOPE_ML_BACKEND=tensorflow but '@tensorflow/tfjs-node' is not installed or did not register its backend.",
    );
  }
  return initWasm(opts);
}

/**
 * tfjs-node registers backend 'tensorflow' into the tfjs-core it resolves. That must be the same instance as
 * ours, or the backend would be invisible here; checking the registry catches a duplicated tfjs-core.
 */
function loadNativeBackend(): boolean {
  // A computed name keeps bundlers from trying to inline a native addon that is absent from Lambda zips.
  const nativePackage = ['@tensorflow', 'tfjs-node'].join('/');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional native addon, resolved at run time
    require(nativePackage);
  } catch {
    return false;
  }
  return tf.findBackendFactory('tensorflow') !== null;
}

async function initWasm(opts: RuntimeOptions): Promise<RuntimeInfo> {
  const explicit = opts.wasmDir ?? mlSettings().wasmDir;
  // Unset, the installed package's dist comes first; in an esbuild bundle there is none and the binaries
  // are expected beside the bundle, which is this module's directory.
  const candidates = explicit ? [explicit] : [packageWasmDir(), __dirname].filter((d): d is string => !!d);
  const wasmDir = candidates.find((dir) => WASM_BINARIES.every((name) => existsSync(path.join(dir, name))));
  if (!wasmDir) {
    throw new Error(
      `The TensorFlow.js wasm binaries are missing from ${candidates.map((d) => `'${d}'`).join(' and ')} ` +
        `(${WASM_BINARIES.join(', ')}). Copy them from node_modules/@tensorflow/tfjs-backend-wasm/dist next to ` +
        'the handler, or set LYMPHOSCOPE_WASM_DIR.',
    );
  }
  // setWasmPaths concatenates prefix and file name, so the trailing separator matters.
  setWasmPaths(wasmDir.endsWith(path.sep) ? wasmDir : wasmDir + path.sep);
  await activate('wasm');
  // After activation: initialising the backend runs the shipped kernels' setup (binding their wasm
  // functions), and ours fall back to some of them.
  registerWasmTrainingKernels();
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  return { backend: 'wasm', tfjsVersion: tf.version.tfjs, simd, threads: getThreadsCount() };
}

function packageWasmDir(): string | undefined {
  try {
    return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  } catch {
    return undefined;
  }
}

async function activate(backend: string): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(backend);
  } catch (error) {
    throw new Error(`TensorFlow.js backend '${backend}' failed to initialise: ${(error as Error).message}`);
  }
  // setBackend logs the cause and answers false rather than throwing; never fall back to cpu silently.
  if (!ok) throw new Error(`TensorFlow.js backend '${backend}' failed to initialise (see the log above).`);
  await tf.ready();
}
