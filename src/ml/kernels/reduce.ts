import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, allocate, floats, type WasmBackend } from './heap';

/**
 * Below this many elements the shipped kernel is as fast: its channel-first transpose still fits in cache.
 * Above it (a 32x94x94x64 activation of the seed net) the transpose costs 120 ms and this loop 35 ms.
 */
const LARGE = 1 << 22;

/**
 * Sum and Mean over every axis but the last, for large tensors: per-channel statistics of NHWC activations
 * (bias gradients, batch-norm moments). The shipped wasm kernels transpose the channels to the front
 * first; here one sequential pass accumulates rows into per-channel float64 sums. Everything else goes to
 * the shipped kernel.
 *
 * (An XNNPACK product ones[1, rows] x x[rows, channels] looks faster in isolation, but packing x as a
 * right-hand matrix costs more than the sum, and XNNPACK would keep the packed copy until x is disposed.)
 */
export function perChannelReduction(kind: 'sum' | 'mean') {
  return (args: KernelArgs, shipped: tf.KernelFunc): tf.TensorInfo => {
    const backend = args.backend as unknown as WasmBackend;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
    const size = tf.util.sizeFromShape(x.shape);
    if (x.dtype !== 'float32' || !leading || size < LARGE) return shipped(args) as tf.TensorInfo;

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
    const scale = kind === 'mean' ? 1 / rows : 1;
    for (let c = 0; c < channels; c++) result[c] = totals[c] * scale;
    return out;
  };
}
