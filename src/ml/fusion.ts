import { badInput } from '../errors';
import { fitLogistic, logit, logitOf, sigmoid, type LogisticModel } from './logistic';
import type { Morphology } from './morphology';

/**
 * Morphology beside pixels. A CNN trained on a few dozen cells ranks them barely better than chance,
 * while a cell's measured size and outline carry most of what a hematologist reads off a blast. The
 * stack combines both in two small logistic regressions, each fitted where it cannot cheat:
 *
 * - `morphology`: the measured features -> log-odds of ALL, fitted on the training split (a ridge
 *   regression on 10 numbers does not memorise its training cells the way a CNN does);
 * - `combiner`: [CNN log-odds, morphology log-odds] -> probability of ALL, fitted on the validation
 *   split, on which neither part was trained, so it learns how far to trust each. It is also the
 *   calibration step: its output is a probability fitted on held-out cells.
 *
 * The decision threshold and review band are then chosen on the fused validation probabilities.
 */
export interface MorphologyStack {
  kind: 'morphology-stack';
  morphology: LogisticModel;
  combiner: LogisticModel;
}

/** The measured features the stack reads, in order; log for the sizes, which are skewed and scale-dependent. */
export const FUSION_FEATURES = [
  'logArea',
  'logPerimeter',
  'circularity',
  'solidity',
  'eccentricity',
  'meanIntensity',
  'intensityStd',
  'meanRed',
  'meanGreen',
  'meanBlue',
] as const;

/** The ridge penalties: firm for the 10 morphology weights, firmer for the combiner fitted on few cells. */
export const MORPHOLOGY_L2 = 4;
export const COMBINER_L2 = 2;

/** One row of FUSION_FEATURES; an unmeasurable cell (no foreground) gives NaNs, read as "average". */
export function morphologyVector(m: Morphology): number[] {
  const log = (v: number) => (v > 0 ? Math.log(v) : NaN);
  return [
    log(m.areaPx),
    log(m.perimeterPx),
    m.circularity,
    m.solidity,
    m.eccentricity,
    m.meanIntensity,
    m.intensityStd,
    m.meanRgb[0],
    m.meanRgb[1],
    m.meanRgb[2],
  ];
}

export interface FusionExample {
  label: 0 | 1;
  morphology: Morphology;
}

/** The morphology-only baseline: a balanced ridge logistic regression on FUSION_FEATURES. */
export function fitMorphologyModel(train: FusionExample[]): LogisticModel {
  return fitLogistic(
    train.map((e) => morphologyVector(e.morphology)),
    train.map((e) => e.label),
    [...FUSION_FEATURES],
    { l2: MORPHOLOGY_L2, balanced: true },
  );
}

export function morphologyProbability(model: LogisticModel, m: Morphology): number {
  return sigmoid(logitOf(model, morphologyVector(m)));
}

/**
 * Fits the stack: the morphology model on `train`, the combiner on `validation` with the CNN's
 * probabilities for those cells (`validationCnn[i]` belongs to `validation[i]`).
 */
export function fitMorphologyStack(
  train: FusionExample[],
  validation: FusionExample[],
  validationCnn: number[],
): MorphologyStack {
  if (validation.length !== validationCnn.length) {
    throw badInput(
      `Got ${validation.length} validation cells and ${validationCnn.length} CNN probabilities.`,
    );
  }
  const morphology = fitMorphologyModel(train);
  const rows = validation.map((e, i) => [
    logit(validationCnn[i]),
    logitOf(morphology, morphologyVector(e.morphology)),
  ]);
  const combiner = fitLogistic(
    rows,
    validation.map((e) => e.label),
    ['cnnLogit', 'morphologyLogit'],
    { l2: COMBINER_L2, balanced: true },
  );
  return { kind: 'morphology-stack', morphology, combiner };
}

/**
 * The zero-parameter alternative to a fitted combiner: the mean of the two log-odds, in the same
 * representation (so serving does not care which one a card holds).
 */
export function blendStack(train: FusionExample[]): MorphologyStack {
  return {
    kind: 'morphology-stack',
    morphology: fitMorphologyModel(train),
    combiner: {
      features: ['cnnLogit', 'morphologyLogit'],
      mean: [0, 0],
      scale: [1, 1],
      weights: [0.5, 0.5],
      bias: 0,
    },
  };
}

/** The fused probability of ALL for one cell. Never throws on an unmeasurable cell: it falls back to average features. */
export function fuse(stack: MorphologyStack, probabilityCnn: number, morphology: Morphology): number {
  const morphologyLogit = logitOf(stack.morphology, morphologyVector(morphology));
  return sigmoid(logitOf(stack.combiner, [logit(probabilityCnn), morphologyLogit]));
}

/** Checks a stack read from a model card before serving with it. */
export function isMorphologyStack(value: unknown): value is MorphologyStack {
  const v = value as MorphologyStack | null;
  const isModel = (m: LogisticModel | undefined, d: number) =>
    !!m &&
    Array.isArray(m.weights) &&
    m.weights.length === d &&
    m.mean?.length === d &&
    m.scale?.length === d &&
    [...m.weights, ...m.mean, ...m.scale, m.bias].every(Number.isFinite);
  return (
    !!v &&
    v.kind === 'morphology-stack' &&
    isModel(v.morphology, FUSION_FEATURES.length) &&
    isModel(v.combiner, 2)
  );
}
