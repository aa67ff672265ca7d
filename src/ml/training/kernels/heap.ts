import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Helpers for kernels that move data in JavaScript directly on the wasm heap. The heap can grow (and its
 * ArrayBuffer be replaced) on any allocation, so views must be taken after the last allocation that
 * precedes their use, never kept across one.
 */
export type WasmBackend = BackendWasm;

/** What the engine passes a kernel function. */
export type KernelArgs = Parameters<tf.KernelFunc>[0];

export function allocate(
  backend: WasmBackend,
  shape: number[],
  dtype: tf.DataType = 'float32',
): tf.TensorInfo {
  return backend.makeOutput(shape, dtype);
}

export function release(backend: WasmBackend, info: tf.TensorInfo): void {
  backend.disposeData(info.dataId);
}

export function floats(backend: WasmBackend, info: tf.TensorInfo): Float32Array {
  if (info.dtype !== 'float32') throw new Error(`Expected a float32 tensor, got ${info.dtype}.`);
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** Any numeric tensor's data, viewed with its own element type. */
export function elements(backend: WasmBackend, info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array {
  return backend.typedArrayFromHeap(info) as Float32Array | Int32Array | Uint8Array;
}

/** Runs another registered wasm kernel at backend level (no tape, no engine bookkeeping), as wasm's own kernels do. */
export function runWasmKernel(
  backend: WasmBackend,
  kernelName: string,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): tf.TensorInfo {
  const kernel = tf.getKernel(kernelName, 'wasm');
  if (!kernel) throw new Error(`The wasm backend has no '${kernelName}' kernel.`);
  return kernel.kernelFunc({ inputs, attrs, backend }) as tf.TensorInfo;
}
