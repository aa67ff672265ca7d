import * as tf from '@tensorflow/tfjs';
import { estimateFlops } from '../src/ml/models/architectures';
import { exportOnnx } from '../src/ml/onnx/export';
import { OnnxClassifier } from '../src/ml/onnx/session';
import { randomImages, round, timeAsync } from './stats';

export interface InferenceRow {
  model: string;
  runtime: string;
  threads: number;
  batch: number;
  imagesPerSecond: number;
  gflopsPerSecond: number;
  msPerBatch: number;
}

/**
 * Forward passes of one model, TF.js (the backend in use) against onnxruntime on the same weights
 * (exported by src/ml/onnx) with 1 and 2 threads, at batch 1 and 32, on random pixels: the speed of a
 * forward pass does not depend on what the pixels show.
 */
export async function benchInference(
  name: string,
  model: tf.LayersModel,
  backend: string,
  quick: boolean,
): Promise<InferenceRow[]> {
  const size = model.inputs[0].shape[1] as number;
  const gflopPerImage = estimateFlops(model) / 1e9;
  const rows: InferenceRow[] = [];
  const row = (runtime: string, threads: number, batch: number, ms: number): InferenceRow => ({
    model: name,
    runtime,
    threads,
    batch,
    msPerBatch: round(ms),
    imagesPerSecond: round((batch * 1000) / ms),
    gflopsPerSecond: round((batch * gflopPerImage * 1000) / ms),
  });
  const repetitions = (batch: number) => (batch === 1 ? (quick ? 15 : 40) : quick ? 3 : 6);

  for (const batch of [1, 32]) {
    const pixels = randomImages(batch, size, batch);
    const x = tf.tensor4d(pixels, [batch, size, size, 3]);
    const ms = await timeAsync(
      () => tf.tidy(() => void (model.predict(x) as tf.Tensor).dataSync()),
      repetitions(batch),
    );
    x.dispose();
    rows.push(row(`tfjs-${backend}`, 1, batch, ms));
  }
  const { bytes } = exportOnnx(model);
  for (const threads of [1, 2]) {
    const onnx = await OnnxClassifier.create(bytes, size, { threads });
    for (const batch of [1, 32]) {
      const pixels = randomImages(batch, size, batch);
      const ms = await timeAsync(() => onnx.predict(pixels, batch), repetitions(batch) * 2, 2);
      rows.push(row('onnxruntime', threads, batch, ms));
    }
    await onnx.dispose();
  }
  return rows;
}
