import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Architecture } from '../../../src/ml/models/architecture-names';
import { buildModel } from '../../../src/ml/models/architectures';
import { gradCam } from '../../../src/ml/explanation/grad-cam';
import { decodeImage } from '../../../src/ml/image/decode';
import { toModelInput } from '../../../src/ml/image/preprocess';
import { loadModel } from '../../../src/ml/models/model-io';
import { exportBundle, exportOnnx, OnnxClassifier, UnsupportedLayerError } from '../../../src/ml/onnx';
import { initRuntime } from '../../../src/ml/runtime';
import { sampleImages } from '../../helpers/sample';

/**
 * The ONNX export must answer what the TF.js model answers, on real C-NMC cells: the probability to
 * 1e-4 (the product's promise) and the Grad-CAM heat map to 1e-3. Random initial weights would put
 * every probability near 0.5, so the networks get non-trivial batch-norm statistics and a steeper head
 * (probabilities spread over (0, 1)); the bundled demo model is a real trained one.
 */
const DEMO_DIR = path.join(__dirname, '..', '..', '..', 'data', 'demo-model');
// Not 64: the seed net's last maps would be 1x1 there, and a Flatten in the wrong order would go unnoticed.
const SIZE = 80;

async function cells(size: number, every: number): Promise<Float32Array[]> {
  const images = sampleImages().filter((_, i) => i % every === 0);
  return Promise.all(images.map(async (s) => toModelInput(await decodeImage(s.bytes), size)));
}

function batch(pixels: Float32Array[]): Float32Array {
  const out = new Float32Array(pixels.length * pixels[0].length);
  pixels.forEach((p, i) => out.set(p, i * p.length));
  return out;
}

function tfjsProbabilities(model: tf.LayersModel, pixels: Float32Array[], size: number): Float32Array {
  return tf.tidy(
    () =>
      (
        model.predict(tf.tensor4d(batch(pixels), [pixels.length, size, size, 3])) as tf.Tensor
      ).dataSync() as Float32Array,
  );
}

/**
 * Moves batch-norm statistics away from (0, 1), then rescales the output layer so that the logits of
 * `pixels` have mean 0 and standard deviation 2: random weights alone answer about 0.5 for every cell.
 */
function spreadDecisions(model: tf.LayersModel, pixels: Float32Array[], size: number, seed: number): void {
  for (const layer of model.layers) {
    if (layer.getClassName() === 'BatchNormalization') {
      // gamma, beta, moving mean, moving variance
      const ranges: Array<[number, number]> = [
        [0.5, 1.5],
        [-0.2, 0.2],
        [-0.3, 0.3],
        [0.3, 2],
      ];
      layer.setWeights(
        layer.getWeights().map((w, i) => tf.randomUniform(w.shape, ...ranges[i], 'float32', seed + i)),
      );
    }
  }
  const head = model.getLayer('probability_all');
  const features = tf.model({ inputs: model.inputs, outputs: head.input as tf.SymbolicTensor });
  const [kernel, bias] = head.getWeights();
  const logits = tf.tidy(() =>
    tf.matMul(
      features.predict(tf.tensor4d(batch(pixels), [pixels.length, size, size, 3])) as tf.Tensor2D,
      kernel as tf.Tensor2D,
    ),
  );
  const { mean, variance } = tf.moments(logits);
  const scale = 2 / Math.sqrt(variance.dataSync()[0]);
  head.setWeights([tf.mul(kernel, scale), tf.fill(bias.shape, -mean.dataSync()[0] * scale)]);
  tf.dispose([logits, mean, variance]);
}

async function compare(model: tf.LayersModel, pixels: Float32Array[], size: number) {
  const exported = exportOnnx(model);
  const onnx = await OnnxClassifier.create(exported.bytes, size, { threads: 1 });
  try {
    const expected = tfjsProbabilities(model, pixels, size);
    const actual = await onnx.predict(batch(pixels), pixels.length);
    let probabilityDiff = 0;
    expected.forEach((p, i) => (probabilityDiff = Math.max(probabilityDiff, Math.abs(p - actual[i]))));
    let heatmapDiff = 0;
    if (exported.gradCam) {
      for (const p of pixels) {
        const input = tf.tensor4d(p, [1, size, size, 3]);
        const reference = gradCam(model, input);
        input.dispose();
        const explained = await onnx.explain(p);
        probabilityDiff = Math.max(
          probabilityDiff,
          Math.abs(reference.probabilityAll - explained.probabilityAll),
        );
        reference.heatmap.forEach(
          (h, i) => (heatmapDiff = Math.max(heatmapDiff, Math.abs(h - explained.heatmap[i]))),
        );
      }
    }
    return { exported, expected, probabilityDiff, heatmapDiff };
  } finally {
    await onnx.dispose();
  }
}

beforeAll(async () => {
  await initRuntime();
});

describe('exportOnnx on real C-NMC cells', () => {
  let pixels: Float32Array[];
  beforeAll(async () => {
    pixels = await cells(SIZE, 4); // 16 cells, both classes
  });

  it.each<Architecture>(['vanilla', 'seed-2x2x1x1', 'lymphonet'])(
    '%s: probabilities within 1e-4 and the same Grad-CAM',
    async (arch) => {
      const model = buildModel(arch, SIZE, 11);
      try {
        spreadDecisions(model, pixels, SIZE, 3);
        const { exported, expected, probabilityDiff, heatmapDiff } = await compare(model, pixels, SIZE);
        expect(Math.max(...expected) - Math.min(...expected)).toBeGreaterThan(0.5);
        expect(exported.gradCam).toBe(true);
        expect(probabilityDiff).toBeLessThan(1e-4);
        expect(heatmapDiff).toBeLessThan(1e-3);
      } finally {
        model.dispose();
      }
    },
  );

  it('majority: the prior, without a Grad-CAM output (it has no conv layer)', async () => {
    const model = buildModel('majority', SIZE, 1, { prior: 0.3 });
    try {
      const { exported, probabilityDiff, expected } = await compare(model, pixels, SIZE);
      expect(exported.gradCam).toBe(false);
      expect(expected[0]).toBeCloseTo(0.3, 5);
      expect(probabilityDiff).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });

  it('the trained demo model agrees on all 63 sample cells', async () => {
    const modelJson = JSON.parse(readFileSync(path.join(DEMO_DIR, 'model.json'), 'utf8'));
    const bundle = { modelJson, weights: readFileSync(path.join(DEMO_DIR, 'weights.bin')) };
    const model = await loadModel(bundle);
    try {
      const all = await cells(96, 1);
      const fromBundle = await exportBundle(bundle);
      expect(fromBundle.gradCam).toBe(true);
      const { probabilityDiff, heatmapDiff } = await compare(model, all, 96);
      expect(probabilityDiff).toBeLessThan(1e-4);
      expect(heatmapDiff).toBeLessThan(1e-3);
    } finally {
      model.dispose();
    }
  });
});

describe('exportOnnx limits', () => {
  it('refuses a layer it does not know', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.upSampling2d({ inputShape: [8, 8, 3], size: [2, 2] }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 1, activation: 'sigmoid' }),
      ],
    });
    try {
      expect(() => exportOnnx(model)).toThrow(UnsupportedLayerError);
    } finally {
      model.dispose();
    }
  });

  it('exports without Grad-CAM when the head cannot be differentiated, and still agrees', async () => {
    const input = tf.input({ shape: [SIZE, SIZE, 3] });
    let x = tf.layers
      .conv2d({ filters: 4, kernelSize: 3, name: 'last_conv', activation: 'relu' })
      .apply(input);
    x = tf.layers.conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: 'same' }).apply(x);
    x = tf.layers.averagePooling2d({ poolSize: 3, padding: 'same' }).apply(x);
    x = tf.layers.flatten().apply(x);
    const output = tf.layers
      .dense({ units: 1, activation: 'sigmoid', name: 'probability_all' })
      .apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: output });
    try {
      const { exported, probabilityDiff } = await compare(model, await cells(SIZE, 16), SIZE);
      expect(exported.gradCam).toBe(false);
      expect(exported.gradCamSkipped).toMatch(/cannot pass back/);
      expect(probabilityDiff).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });
});
