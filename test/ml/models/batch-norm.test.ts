import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../../../src/ml/models/architectures';
import { recomputeBatchNormStatistics } from '../../../src/ml/models/batch-norm';
import { Rng } from '../../../src/ml/rng';
import { initRuntime, liveTensors } from '../../../src/ml/runtime';

const SIZE = 32;

beforeAll(() => initRuntime());

function images(n: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: SIZE * SIZE * 3 }, () => rng.next()));
}

describe('recomputeBatchNormStatistics', () => {
  it('makes inference match training mode on the same images at every batch-norm layer', async () => {
    const model = buildModel('lymphonet', SIZE, 5);
    const set = images(12, 1);
    const before = liveTensors();
    // Batches of 5 (5 + 5 + 2): the statistics are pooled over all images, not the last batch's.
    expect(await recomputeBatchNormStatistics(model, set, SIZE, 5)).toBe(4);
    expect(liveTensors()).toBe(before);
    const x = tf.tensor4d(Float32Array.from(set.flatMap((p) => Array.from(p))), [set.length, SIZE, SIZE, 3]);
    for (const name of ['block1_bn', 'block4_bn']) {
      const probe = tf.model({
        inputs: model.inputs,
        outputs: model.getLayer(name).output as tf.SymbolicTensor,
      });
      const inference = probe.predict(x) as tf.Tensor;
      const training = probe.apply(x, { training: true }) as tf.Tensor;
      const gap = tf.max(tf.abs(tf.sub(inference, training)));
      // Equal up to float rounding and batch norm's epsilon (1e-3) against variances of order 1.
      expect(gap.dataSync()[0]).toBeLessThan(2e-2);
      tf.dispose([inference, training, gap]);
    }
    x.dispose();
    model.dispose();
  });

  it('changes the predictions of a freshly built network, whose moving statistics are still (0, 1)', async () => {
    const model = buildModel('lymphonet', SIZE, 6);
    const set = images(8, 2);
    const x = tf.tensor4d(Float32Array.from(set.flatMap((p) => Array.from(p))), [set.length, SIZE, SIZE, 3]);
    const predict = () => tf.tidy(() => Array.from((model.predict(x) as tf.Tensor).dataSync()));
    const before = predict();
    await recomputeBatchNormStatistics(model, set, SIZE);
    const after = predict();
    expect(Math.max(...after.map((p, i) => Math.abs(p - before[i])))).toBeGreaterThan(1e-3);
    tf.dispose(x);
    model.dispose();
  });

  it('leaves a network without batch norm alone', async () => {
    const model = buildModel('vanilla', SIZE, 7);
    expect(await recomputeBatchNormStatistics(model, images(2, 3), SIZE)).toBe(0);
    model.dispose();
  });
});
