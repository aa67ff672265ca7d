import * as tf from '@tensorflow/tfjs';
import { GraphBuilder } from '../src/ml/onnx/graph';
import { onnxRuntime, sessionOptions } from '../src/ml/onnx/session';
import { randomValues, round } from './stats';

export interface PeakRow {
  runtime: string;
  threads: number;
  gflopsPerSecond: number;
}

/**
 * The machine's convolution peak, as the best GFLOP/s of a large 3x3 convolution (batch 32, 96x96,
 * 64 -> 64 channels: 21.7 GFLOP a run) in onnxruntime (MLAS, 1 and 2 threads) and in the TF.js backend in
 * use (XNNPACK in wasm). The best of several runs, as a peak should be.
 */
export async function benchConvPeak(backend: string, quick: boolean): Promise<PeakRow[]> {
  const [n, size, channels] = [32, 96, 64];
  const gflop = (2 * n * size * size * channels * channels * 9) / 1e9;
  const inputValues = randomValues(n * size * size * channels, 3);
  const weightValues = randomValues(channels * channels * 9, 5).map((v) => (v - 0.5) / 10);
  const rows: PeakRow[] = [];

  const ort = onnxRuntime();
  if (ort) {
    const b = new GraphBuilder();
    const x = b.input('x', [n, channels, size, size]);
    const w = b.floats('w', [channels, channels, 3, 3], weightValues);
    b.reserve('y');
    const conv = b.op('Conv', [x, w], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    b.output(conv, 'y', [n, channels, size, size]);
    const bytes = b.encode('conv-peak', 'benchmark');
    const input = new ort.Tensor('float32', inputValues, [n, channels, size, size]);
    for (const threads of [1, 2]) {
      const session = await ort.InferenceSession.create(bytes, sessionOptions(threads));
      let best = Infinity;
      for (let i = 0; i < (quick ? 3 : 5); i++) {
        const start = performance.now();
        const out = await session.run({ x: input });
        best = Math.min(best, performance.now() - start);
        out.y.dispose();
      }
      await session.release();
      rows.push({ runtime: 'onnxruntime', threads, gflopsPerSecond: round((gflop * 1000) / best) });
    }
  }

  const x = tf.tensor4d(inputValues, [n, size, size, channels]);
  const w = tf.tensor4d(weightValues, [3, 3, channels, channels]);
  let best = Infinity;
  for (let i = 0; i < (quick ? 2 : 3); i++) {
    const start = performance.now();
    // void: tidy walks whatever the callback returns, and a 19M-value array takes a minute to walk.
    tf.tidy(() => void tf.conv2d(x, w, 1, 'same').dataSync());
    best = Math.min(best, performance.now() - start);
  }
  tf.dispose([x, w]);
  rows.push({ runtime: `tfjs-${backend}`, threads: 1, gflopsPerSecond: round((gflop * 1000) / best) });
  return rows;
}
