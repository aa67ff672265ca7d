import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, allocate, elements, type WasmBackend } from './heap';

/**
 * Tile as block copies. The batch-norm gradient tiles a [1, 1, 1, C] tensor to the full activation shape
 * every step, and the shipped wasm kernel computes a multi-index per element (400 ms of a 1.2 s lymphonet
 * step at 96x96); doubling copies make it memory-bound.
 */
export function tile(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { reps } = args.attrs as unknown as tf.TileAttrs;
  if (x.dtype === 'string' || x.dtype === 'complex64') {
    throw new Error(`Tile (wasm, Lymphoscope): dtype ${x.dtype} is not supported.`);
  }
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = allocate(backend, outShape, x.dtype);
  const target = elements(backend, out);
  const source = elements(backend, x);
  if (target.length === 0) return out;

  // Expand one axis at a time, innermost first: along axis k each contiguous block of the current result
  // (axis k and everything inside it) is repeated reps[k] times.
  let current: typeof source = source;
  const shape = [...x.shape];
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    if (reps[axis] === 1) continue;
    const block = shape.slice(axis).reduce((a, b) => a * b, 1);
    const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const isLast = !shape.some((d, i) => i < axis && reps[i] !== 1);
    const next = isLast
      ? target
      : new (current.constructor as Float32ArrayConstructor)(outer * block * reps[axis]);
    for (let o = 0; o < outer; o++) {
      const start = o * block * reps[axis];
      next.set(current.subarray(o * block, (o + 1) * block), start);
      let filled = block;
      const total = block * reps[axis];
      while (filled < total) {
        const copy = Math.min(filled, total - filled);
        next.copyWithin(start + filled, start, start + copy);
        filled += copy;
      }
    }
    current = next;
    shape[axis] *= reps[axis];
  }
  if (current !== target) target.set(current);
  return out;
}
