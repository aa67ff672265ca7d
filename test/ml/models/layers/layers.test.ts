import * as tf from '@tensorflow/tfjs';
import { gradCam } from '../../../../src/ml/explanation/grad-cam';
import { LAYER_MODULES } from '../../../../src/ml/models/layers/registry';
import { exampleModel } from '../../../../src/ml/models/layers/shared';
import { exportOnnx, OnnxClassifier, UnsupportedLayerError } from '../../../../src/ml/onnx';
import { OnnxTrainer } from '../../../../src/ml/onnx/trainer';
import { initRuntime } from '../../../../src/ml/runtime';
import { expectTrainsAsTfjs, realBatch, type ReferenceBatch } from '../../../helpers/tfjs-reference';

/**
 * Each layer module checks itself against TF.js, on 8 real C-NMC cells (data/cnmc-sample) at 16 x 16,
 * with the small model its `example` builds: the exported probability (to 1e-4), the ONNX Grad-CAM map
 * against heatmap.ts' tf.grad one (to 1e-3) where the module passes Grad-CAM back, and the training
 * graph's loss, gradients and batch-norm moving statistics against tf.variableGrads where it trains.
 * Where a module says it cannot do something, the graph must refuse, not compute something else.
 */
const SIZE = 16;
const COUNT = 8;

let batch: ReferenceBatch;

beforeAll(async () => {
  await initRuntime();
  batch = await realBatch(SIZE, COUNT);
});

function largestDifference(expected: ArrayLike<number>, actual: ArrayLike<number>): number {
  let largest = 0;
  for (let i = 0; i < expected.length; i++) largest = Math.max(largest, Math.abs(expected[i] - actual[i]));
  return largest;
}

describe.each(LAYER_MODULES.map((m) => [m.classNames.join(', '), m] as const))('%s', (_name, module) => {
  it('exports the probabilities of TF.js, and the Grad-CAM map where it passes back', async () => {
    const model = module.example(SIZE);
    const onnx = await OnnxClassifier.create(exportOnnx(model).bytes, SIZE, { threads: 1 });
    try {
      expect(model.layers.some((l) => module.classNames.includes(l.getClassName()))).toBe(true);
      const exported = exportOnnx(model);
      const expected = tf.tidy(
        () =>
          (
            model.predict(tf.tensor4d(batch.pixels, [COUNT, SIZE, SIZE, 3])) as tf.Tensor
          ).dataSync() as Float32Array,
      );
      expect(largestDifference(expected, await onnx.predict(batch.pixels, COUNT))).toBeLessThan(1e-4);
      // The example's other layers (conv, flatten, dense) all pass back: the module decides.
      expect(exported.gradCam).toBe(module.gradCam !== undefined);
      if (!exported.gradCam) return;
      let heatmapDiff = 0;
      for (let i = 0; i < COUNT; i++) {
        const cell = batch.pixels.slice(i * SIZE * SIZE * 3, (i + 1) * SIZE * SIZE * 3);
        const input = tf.tensor4d(cell, [1, SIZE, SIZE, 3]);
        const reference = gradCam(model, input);
        input.dispose();
        const explained = await onnx.explain(cell);
        heatmapDiff = Math.max(heatmapDiff, largestDifference(reference.heatmap, explained.heatmap));
      }
      expect(heatmapDiff).toBeLessThan(1e-3);
    } finally {
      await onnx.dispose();
      model.dispose();
    }
  });

  it('trains in onnxruntime as TF.js does, or refuses', async () => {
    if (module.train) return expectTrainsAsTfjs(() => module.example(SIZE), batch, SIZE);
    const model = module.example(SIZE);
    try {
      await expect(OnnxTrainer.create(model, { threads: 1 })).rejects.toThrow(UnsupportedLayerError);
    } finally {
      model.dispose();
    }
  });
});

// The conv example pads 'same' with a 3x3 kernel (one pixel each side). The input gradient pads by what the
// forward pass did not (conv2d.ts' inputGradient): 'valid' padding and even kernels, whose 'same' padding is
// uneven, must pass back as TF.js does too.
describe.each([
  ['valid', 3],
  ['same', 2],
  ['same', 4],
  ['valid', 2],
] as const)("Conv2D with padding '%s' and a %ix%i kernel", (padding, kernelSize) => {
  it('trains in onnxruntime as TF.js does', () =>
    expectTrainsAsTfjs(
      () =>
        exampleModel(SIZE, [
          tf.layers.conv2d({
            filters: 3,
            kernelSize,
            padding,
            activation: 'relu',
            kernelInitializer: tf.initializers.glorotUniform({ seed: 11 }),
            biasInitializer: tf.initializers.constant({ value: 0.02 }),
          }),
        ]),
      batch,
      SIZE,
    ));
});
