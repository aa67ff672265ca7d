/**
 * `npx tsx bench/training-validation-ab.ts`: train()'s validation forward pass both ways, alternated in
 * four rounds: TF.js model.predict by batches of 32, and onnxruntime on 2 threads with the export and the
 * session's creation counted (as train.ts does every epoch). lymphonet at 96x96 on seeded synthetic
 * cells (src/ml/data/synthetic.ts, seeds from 10,000), 64 and 320 images. Prints both times per round,
 * the ratio of the medians and the largest difference between the probabilities.
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { loadMlSettings } from '../src/config';
import { buildModel } from '../src/ml/models/architectures';
import { exportOnnx } from '../src/ml/onnx/export';
import { OnnxClassifier } from '../src/ml/onnx/session';
import { initRuntime } from '../src/ml/runtime';
import { configureMl } from '../src/ml/settings';
import { percentile, round } from './stats';
import { syntheticBatch } from './training';

const SIZE = 96;
const BATCH = 32;

async function main() {
  configureMl(loadMlSettings());
  await initRuntime();
  const model = buildModel('lymphonet', SIZE, 1);
  for (const count of [64, 320]) {
    const chunks: Float32Array[] = [];
    for (let start = 0; start < count; start += BATCH) {
      chunks.push(syntheticBatch(BATCH, SIZE, 10_000 + start).pixels);
    }
    const tfjsMs: number[] = [];
    const onnxMs: number[] = [];
    let largest = 0;
    for (let round = 0; round < 4; round++) {
      let start = performance.now();
      const expected: number[] = [];
      for (const pixels of chunks) {
        const p = tf.tidy(() => {
          const x = tf.tensor4d(pixels, [BATCH, SIZE, SIZE, 3]);
          return (model.predict(x) as tf.Tensor).dataSync();
        });
        expected.push(...p);
      }
      tfjsMs.push(performance.now() - start);
      start = performance.now();
      const classifier = await OnnxClassifier.create(exportOnnx(model).bytes, SIZE, { threads: 2 });
      const actual: number[] = [];
      for (const pixels of chunks) actual.push(...(await classifier.predict(pixels, BATCH)));
      await classifier.dispose();
      onnxMs.push(performance.now() - start);
      expected.forEach((v, i) => (largest = Math.max(largest, Math.abs(v - actual[i]))));
    }
    console.log(
      JSON.stringify({
        data: `${count} seeded synthetic cells (seeds from 10,000) at 96x96, lymphonet`,
        tfjsMs: tfjsMs.map(round),
        onnxMs: onnxMs.map(round),
        ratio: round(percentile(onnxMs, 50) / percentile(tfjsMs, 50)),
        largestDifference: largest,
        loadavg: loadavg().map(round),
      }),
    );
  }
  model.dispose();
}

void main();
