/**
 * What the ML core may be told by its caller: which TensorFlow.js backend, where the wasm binaries are,
 * whether onnxruntime serves and trains, with how many threads. src/ml reads no environment: the entry
 * points (the Lambda handlers, the CLI, the bench scripts, a test) read and validate it once
 * (src/config.ts, loadMlSettings) and pass the result to configureMl. Nothing configured, the defaults
 * below apply; they are what an unset environment has always meant.
 */

/** A TensorFlow.js backend to insist on; 'auto' tries tfjs-node, then wasm, and never cpu. */
export type MlBackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

/** What runs a training run's forward and backward passes. */
export type TrainingRuntime = 'onnxruntime' | 'tfjs';

export interface MlSettings {
  /**
   * LYMPHOSCOPE_ML_BACKEND. 'cpu' is never chosen by 'auto' (it trains a CNN at about 0.1 images/s);
   * tests use it as a reference. 'wasm' skips the tfjs-node probe. Read by the first initRuntime only.
   */
  readonly backend: MlBackendChoice;
  /**
   * LYMPHOSCOPE_WASM_DIR: the directory of the tfjs-backend-wasm `.wasm` binaries (a Lambda bundle copies
   * them beside the handler). Null: the installed package, then the bundle's own directory. Read by the
   * first initRuntime only.
   */
  readonly wasmDir: string | null;
  /** LYMPHOSCOPE_ONNX (off: false): whether onnxruntime-node may load; read the first time it is asked for. */
  readonly onnx: boolean;
  /**
   * LYMPHOSCOPE_ONNX_THREADS: threads per onnxruntime session, 1 to 256; null: every core the process may
   * use. On a machine shared with other busy processes one thread can be faster (docs/PERFORMANCE.md).
   */
  readonly onnxThreads: number | null;
  /**
   * LYMPHOSCOPE_TRAIN_RUNTIME: 'onnxruntime' where onnxruntime-node loads, or 'tfjs' alone (for
   * comparison, and the fallback). Read at every training run, so a benchmark or test can run both.
   */
  readonly trainingRuntime: TrainingRuntime;
}

/** The settings of an entry point that configures nothing: the behaviour of an unset environment. */
export const DEFAULT_ML_SETTINGS: MlSettings = Object.freeze({
  backend: 'auto',
  wasmDir: null,
  onnx: true,
  onnxThreads: null,
  trainingRuntime: 'onnxruntime',
});

let current: MlSettings = DEFAULT_ML_SETTINGS;

/**
 * Sets the ML core's settings for this process: what is not given takes its default (not its previous
 * value), so the result depends on the argument alone. Answers the settings it replaced, for a test or
 * benchmark that restores them. The backend and wasm directory count only before the first initRuntime,
 * and `onnx` only before onnxruntime is first asked for: the runtime is chosen once per process.
 */
export function configureMl(settings: Partial<MlSettings>): MlSettings {
  const previous = current;
  const next = { ...DEFAULT_ML_SETTINGS, ...settings };
  if (
    next.onnxThreads !== null &&
    !(Number.isInteger(next.onnxThreads) && next.onnxThreads >= 1 && next.onnxThreads <= 256)
  )
    throw new Error(`onnxThreads must be an integer from 1 to 256, not ${next.onnxThreads}.`);
  current = Object.freeze(next);
  return previous;
}

/** The settings in force. */
export function mlSettings(): MlSettings {
  return current;
}
