import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, allocate, floats, type WasmBackend } from './heap';

/**
 * Below this many elements the shipped kernel is as fast (measured at 32x96x96x16: 10 ms either way).
 * Above it (the seed net's 32x94x94x64 activations) its transpose falls out of cache and costs 120 ms,
 * this loop 35 ms.
 */
export const LARGE_REDUCTION = 1 << 23;

/**
 * Sum over every axis but the last, for large tensors: per-channel statistics of NHWC
 * activations, such as the bias gradients of the seed net's full-resolution convolutions. The shipped wasm kernels transpose the channels to the front
 * first; here one sequential pass accumulates rows into per-channel float64 sums. Everything else goes to
 * the shipped kernel.
 *
 * (An XNNPACK product ones[1, rows] x x[rows, channels] looks faster in isolation, but packing x as a
 * right-hand matrix costs more than the sum, and XNNPACK would keep the packed copy until x is disposed.)
 */
export function perChannelSum(args: KernelArgs, shipped: tf.KernelFunc): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  const leading = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
  const size = tf.util.sizeFromShape(x.shape);
  if (x.dtype !== 'float32' || !leading || size < LARGE_REDUCTION) return shipped(args) as tf.TensorInfo;

  const channels = x.shape[rank - 1];
  const rows = size / channels;
  const outShape = keepDims ? [...x.shape.slice(0, -1).map(() => 1), channels] : [channels];
  const out = allocate(backend, outShape);
  const result = floats(backend, out);
  const values = floats(backend, x);
  const totals = new Float64Array(channels);
  for (let r = 0, base = 0; r < rows; r++, base += channels) {
    for (let c = 0; c < channels; c++) totals[c] += values[base + c];
  }
  for (let c = 0; c < channels; c++) result[c] = totals[c];
  return out;
}
