import * as tf from '@tensorflow/tfjs';
import { dihedralVariants } from '../image/preprocess';
import {
  chooseReviewBand,
  chooseThreshold,
  computeMetrics,
  curvePoints,
  type BinaryMetrics,
  type CurvePoint,
} from './metrics';
import { fitFusion, fuse, type MorphologyStack } from '../features/fusion';
import type { Morphology } from '../features/morphology';
import type { Example, TrainingConfig } from '../training/train';
import { applyCalibration, type PlattCalibration } from '../decisions/calibration';

/**
 * Probability of ALL for each example, in batches. With `tta`, the average over the 8 flips and
 * 90-degree rotations of each cell (a cell has no up, so all 8 are equally valid views).
 */
export async function predictProbabilities(
  model: tf.LayersModel,
  examples: Array<Pick<Example, 'pixels'>>,
  inputSize: number,
  options: { tta?: boolean; batchSize?: number } = {},
): Promise<number[]> {
  const views = options.tta ? 8 : 1;
  const batchSize = options.batchSize ?? 32;
  const perImage = inputSize * inputSize * 3;
  const out: number[] = [];
  const perBatch = Math.max(1, Math.floor(batchSize / views));
  for (let i = 0; i < examples.length; i += perBatch) {
    const slice = examples.slice(i, i + perBatch);
    const flat = new Float32Array(slice.length * views * perImage);
    slice.forEach((e, k) => {
      const variants = options.tta ? dihedralVariants(e.pixels, inputSize) : [e.pixels];
      variants.forEach((v, j) => flat.set(v, (k * views + j) * perImage));
    });
    const output = tf.tidy(
      () => model.predict(tf.tensor4d(flat, [slice.length * views, inputSize, inputSize, 3])) as tf.Tensor,
    );
    const values = await output.data();
    output.dispose();
    for (let k = 0; k < slice.length; k++) {
      let sum = 0;
      for (let j = 0; j < views; j++) sum += values[k * views + j];
      out.push(sum / views);
    }
  }
  return out;
}

export interface Evaluation {
  threshold: number;
  band: { low: number; high: number };
  validation: BinaryMetrics;
  test: BinaryMetrics;
  /** Test split, x: false positive rate, y: true positive rate. */
  roc: CurvePoint[];
  /** Test split, x: recall, y: precision. */
  pr: CurvePoint[];
}

/** The threshold and review band are chosen on validation; the reported metrics come from the untouched test split. */
function decide(
  validationLabels: number[],
  validationProbs: number[],
  testLabels: number[],
  testProbs: number[],
): Evaluation {
  const threshold = chooseThreshold(validationLabels, validationProbs);
  const band = chooseReviewBand(validationLabels, validationProbs, threshold);
  return {
    threshold,
    band,
    validation: computeMetrics(validationLabels, validationProbs, threshold),
    test: computeMetrics(testLabels, testProbs, threshold),
    ...curvePoints(testLabels, testProbs),
  };
}

/** A cell with what the morphology stack reads besides pixels. */
export type MeasuredExample = Example & { morphology: Morphology };

/**
 * Evaluates the way the recipe serves: the CNN's probability, averaged over the 8 views with
 * testTimeAugmentation, then fused with morphology when config.fusion asks (the morphology model fitted on
 * `train`, the combiner on `validation`). Threshold and band are chosen on validation, on the final
 * probabilities; `fusion` is what serving must apply (null without fusion).
 */
export async function evaluateRecipe(
  model: tf.LayersModel,
  splits: { train: MeasuredExample[]; validation: MeasuredExample[]; test: MeasuredExample[] },
  config: Pick<TrainingConfig, 'inputSize' | 'testTimeAugmentation' | 'fusion'>,
): Promise<Evaluation & { fusion: MorphologyStack | null }> {
  const options = { tta: config.testTimeAugmentation };
  let validationProbs = await predictProbabilities(model, splits.validation, config.inputSize, options);
  let testProbs = await predictProbabilities(model, splits.test, config.inputSize, options);
  let fusion: MorphologyStack | null = null;
  if (config.fusion !== 'none') {
    const validation = validationProbs;
    const stack = await fitFusion(config.fusion, splits.train, async () => ({
      cells: splits.validation,
      cnn: validation,
    }));
    validationProbs = splits.validation.map((e, i) => fuse(stack, validationProbs[i], e.morphology));
    testProbs = splits.test.map((e, i) => fuse(stack, testProbs[i], e.morphology));
    fusion = stack;
  }
  const evaluation = decide(
    splits.validation.map((e) => e.label),
    validationProbs,
    splits.test.map((e) => e.label),
    testProbs,
  );
  return { ...evaluation, fusion };
}

/**
 * The probabilities serving gives these cells under a card's rule: the network's (over 8 views with
 * testTimeAugmentation), fused with morphology when the card holds a stack, calibrated when it holds a
 * calibration. Old cards have none of these.
 */
export async function servedProbabilities(
  model: tf.LayersModel,
  rule: {
    inputSize: number;
    testTimeAugmentation?: boolean;
    fusion?: MorphologyStack | null;
    calibration?: PlattCalibration | null;
  },
  cells: Array<Pick<MeasuredExample, 'pixels' | 'morphology'>>,
): Promise<number[]> {
  const network = await predictProbabilities(model, cells, rule.inputSize, {
    tta: rule.testTimeAugmentation === true,
  });
  const stack = rule.fusion;
  const fused = stack ? cells.map((c, i) => fuse(stack, network[i], c.morphology)) : network;
  return fused.map((p) => applyCalibration(rule.calibration, p));
}
