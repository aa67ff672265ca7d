/**
 * The TensorFlow.js runtime a process chose, apart from the code that chooses it (runtime.ts): the
 * health query reads it without loading TensorFlow.js, which a process serving with onnxruntime alone
 * never does (src/ml/serving/tfjs-network.ts).
 */

/** What the ML core runs on; reported by the `health` query and written into every model card. */
export interface RuntimeInfo {
  /** 'tensorflow' (native libtensorflow via tfjs-node), 'wasm', or 'cpu' (explicit override only). */
  backend: string;
  tfjsVersion: string;
  /** Whether the wasm backend runs its SIMD build. Always false for 'tensorflow' and 'cpu', which do not use wasm. */
  simd: boolean;
  /** Threads the backend computes with (wasm in Node is single-threaded). */
  threads: number;
}

let current: RuntimeInfo | undefined;

/** The runtime chosen by initRuntime, or undefined before it has finished (or where it never ran). */
export function runtimeInfo(): RuntimeInfo | undefined {
  return current;
}

/** Called by initRuntime once its backend is ready. */
export function recordRuntimeInfo(info: RuntimeInfo): void {
  current = info;
}
