import { buildModel } from '../../../src/ml/models/architectures';
import { recomputeBatchNormStatistics } from '../../../src/ml/models/batch-norm';
import { predictProbabilities } from '../../../src/ml/evaluation/evaluate';
import { blendStack, fuse } from '../../../src/ml/features/fusion';
import { toModelInput } from '../../../src/ml/image/preprocess';
import { measureMorphology } from '../../../src/ml/features/morphology';
import { analyzeCell, type DecisionRule } from '../../../src/ml/serving/predictor';
import { initRuntime, liveTensors } from '../../../src/ml/runtime';
import { syntheticCell } from '../../../src/ml/data/synthetic';
import type * as tf from '@tensorflow/tfjs';
import { builtNetwork } from '../../../src/ml/serving/tfjs-network';

const SIZE = 32;
const rule: DecisionRule = { inputSize: SIZE, threshold: 0.5, reviewLow: 0.4, reviewHigh: 0.5 };
// An off-centre blast, so its 8 views differ and their mean is not the view as given.
const image = syntheticCell(3, { label: 1, size: 64 });

let model: tf.LayersModel;
beforeAll(async () => {
  await initRuntime();
  model = buildModel('lymphonet', SIZE, 11);
  const cells = await Promise.all(
    [0, 1, 2, 3].map((k) => toModelInput(syntheticCell(20 + k, { label: (k % 2) as 0 | 1, size: 64 }), SIZE)),
  );
  await recomputeBatchNormStatistics(model, cells, SIZE);
});
afterAll(() => model.dispose());

describe('analyzeCell under a recipe', () => {
  it('serves the network alone for a card without the recipe fields', async () => {
    const pixels = await toModelInput(image, SIZE);
    const [expected] = await predictProbabilities(model, [{ pixels }], SIZE);
    const served = await analyzeCell(builtNetwork(model), rule, image, { explain: false });
    expect(served.probabilityAll).toBeCloseTo(expected, 5);
    expect(served.networkProbability).toBe(served.probabilityAll);
  });

  it('averages the 8 views with test-time augmentation, explained or not', async () => {
    const pixels = await toModelInput(image, SIZE);
    const [single] = await predictProbabilities(model, [{ pixels }], SIZE);
    const [mean] = await predictProbabilities(model, [{ pixels }], SIZE, { tta: true });
    expect(Math.abs(mean - single)).toBeGreaterThan(1e-5);
    const before = liveTensors();
    for (const explain of [false, true]) {
      const served = await analyzeCell(builtNetwork(model), { ...rule, testTimeAugmentation: true }, image, {
        explain,
      });
      expect(served.probabilityAll).toBeCloseTo(mean, 5);
      expect(served.heatmapPng !== null).toBe(explain);
    }
    expect(liveTensors()).toBe(before);
  });

  it('fuses the network with the measured morphology when the card holds a stack, and decides on the fused value', async () => {
    const train = [0, 1, 2, 3, 4, 5].map((k) => {
      const label = (k % 2) as 0 | 1;
      return { label, morphology: measureMorphology(syntheticCell(40 + k, { label, size: 64 })) };
    });
    const stack = blendStack(train);
    const plain = await analyzeCell(builtNetwork(model), { ...rule, testTimeAugmentation: true }, image, {
      explain: false,
    });
    const fused = await analyzeCell(
      builtNetwork(model),
      { ...rule, testTimeAugmentation: true, fusion: stack },
      image,
      {
        explain: false,
      },
    );
    expect(fused.networkProbability).toBeCloseTo(plain.probabilityAll, 6);
    expect(fused.probabilityAll).toBeCloseTo(fuse(stack, fused.networkProbability, fused.morphology), 12);
    expect(fused.isAll).toBe(fused.probabilityAll >= rule.threshold);
    const damaged = { ...stack, combiner: { ...stack.combiner, weights: [1] } };
    await expect(
      analyzeCell(builtNetwork(model), { ...rule, fusion: damaged }, image, { explain: false }),
    ).rejects.toThrow(/malformed/);
  });
});
