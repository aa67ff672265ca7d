import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, allocate, floats, type WasmBackend } from './heap';

/**
 * dx of max pooling: each window's dy goes to the first maximum of the window in row-major order, exactly
 * as the cpu backend (and TensorFlow) break ties; ties are common after ReLU, where whole windows are 0.
 * A single pass in JavaScript with channels innermost, replacing the shipped wasm kernel.
 */
export function maxPoolGrad(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  if (input.dtype !== 'float32' || dy.dtype !== 'float32') {
    throw new Error(`MaxPoolGrad (wasm, Lymphoscope): float32 only, got ${input.dtype}.`);
  }
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;

  const out = allocate(backend, input.shape);
  const dx = floats(backend, out);
  const x = floats(backend, input);
  const dyValues = floats(backend, dy);
  dx.fill(0);
  const best = new Float32Array(channels);
  const bestAt = new Int32Array(channels);
  for (let n = 0; n < batchSize; n++) {
    for (let yR = 0; yR < outHeight; yR++) {
      const rowStart = yR * strideHeight - padTop;
      for (let yC = 0; yC < outWidth; yC++) {
        const colStart = yC * strideWidth - padLeft;
        best.fill(-Infinity);
        bestAt.fill(-1);
        for (let wR = 0; wR < filterHeight; wR++) {
          const xR = rowStart + wR;
          if (xR < 0 || xR >= inHeight) continue;
          for (let wC = 0; wC < filterWidth; wC++) {
            const xC = colStart + wC;
            if (xC < 0 || xC >= inWidth) continue;
            const base = ((n * inHeight + xR) * inWidth + xC) * channels;
            for (let c = 0; c < channels; c++) {
              const v = x[base + c];
              if (v > best[c]) {
                best[c] = v;
                bestAt[c] = base + c;
              }
            }
          }
        }
        const dyBase = ((n * outHeight + yR) * outWidth + yC) * channels;
        for (let c = 0; c < channels; c++) {
          const at = bestAt[c];
          if (at >= 0) dx[at] += dyValues[dyBase + c];
        }
      }
    }
  }
  return out;
}
