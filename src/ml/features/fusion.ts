import { badInput } from '../../errors';
import { fitLogistic, logit, logitOf, sigmoid, type LogisticModel } from './logistic';
import { featureValue, type Morphology } from './morphology';
import { TEXTURE_FEATURES } from './texture';

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

/** Every measured feature a fusion model may read, by name; log for the sizes, which are skewed and scale-dependent. */
const FEATURE_VALUES: Record<string, (m: Morphology) => number> = {
  logArea: (m) => (m.areaPx > 0 ? Math.log(m.areaPx) : NaN),
  logPerimeter: (m) => (m.perimeterPx > 0 ? Math.log(m.perimeterPx) : NaN),
  circularity: (m) => m.circularity,
  solidity: (m) => m.solidity,
  eccentricity: (m) => m.eccentricity,
  meanIntensity: (m) => m.meanIntensity,
  intensityStd: (m) => m.intensityStd,
  meanRed: (m) => m.meanRgb[0],
  meanGreen: (m) => m.meanRgb[1],
  meanBlue: (m) => m.meanRgb[2],
  // A record measured before texture was: NaN, which the logistic model reads as "average".
  ...Object.fromEntries(TEXTURE_FEATURES.map((name) => [name, (m: Morphology) => featureValue(m, name)])),
};

/** Morphology and chromatin texture together: what the texture blend reads. */
export const TEXTURE_FUSION_FEATURES = [...FUSION_FEATURES, ...TEXTURE_FEATURES] as const;

/**
 * How a recipe fuses the network with the measured cell: 'morphology-blend' averages the two log-odds,
 * 'morphology-stack' weighs them with a combiner fitted on the validation split, 'texture-blend' is the
 * blend whose morphology model also reads the chromatin texture (texture.ts).
 */
export const FUSION_KINDS = ['none', 'morphology-blend', 'morphology-stack', 'texture-blend'] as const;
export type FusionKind = (typeof FUSION_KINDS)[number];

/** The features of a fusion kind's morphology model. */
export function fusionFeatures(fusion: Exclude<FusionKind, 'none'>): readonly string[] {
  return fusion === 'texture-blend' ? TEXTURE_FUSION_FEATURES : FUSION_FEATURES;
}

/** One row of `features` (FUSION_FEATURES by default); an unmeasurable cell (no foreground) gives NaNs, read as "average". */
export function morphologyVector(m: Morphology, features: readonly string[] = FUSION_FEATURES): number[] {
  return features.map((name) => {
    const value = FEATURE_VALUES[name];
    if (!value) throw badInput(`Unknown fusion feature '${name}'.`);
    return value(m);
  });
}

export interface FusionExample {
  label: 0 | 1;
  morphology: Morphology;
}

/** The morphology-only baseline: a balanced ridge logistic regression on `features` (FUSION_FEATURES). */
export function fitMorphologyModel(
  train: FusionExample[],
  features: readonly string[] = FUSION_FEATURES,
): LogisticModel {
  return fitLogistic(
    train.map((e) => morphologyVector(e.morphology, features)),
    train.map((e) => e.label),
    [...features],
    { l2: MORPHOLOGY_L2, balanced: true },
  );
}

/** The model's probability of ALL; it reads the features it was fitted on, by name. */
export function morphologyProbability(model: LogisticModel, m: Morphology): number {
  return sigmoid(logitOf(model, morphologyVector(m, model.features)));
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
    logitOf(morphology, morphologyVector(e.morphology, morphology.features)),
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
export function blendStack(
  train: FusionExample[],
  features: readonly string[] = FUSION_FEATURES,
): MorphologyStack {
  return {
    kind: 'morphology-stack',
    morphology: fitMorphologyModel(train, features),
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
  const morphologyLogit = logitOf(stack.morphology, morphologyVector(morphology, stack.morphology.features));
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
    (sameFeatures(v.morphology?.features, FUSION_FEATURES) ||
      sameFeatures(v.morphology?.features, TEXTURE_FUSION_FEATURES)) &&
    isModel(v.morphology, v.morphology.features.length) &&
    isModel(v.combiner, 2)
  );
}

function sameFeatures(features: unknown, expected: readonly string[]): boolean {
  return (
    Array.isArray(features) &&
    features.length === expected.length &&
    features.every((name, i) => name === expected[i])
  );
}

/**
 * The stack a fusion kind serves with, its morphology model fitted on `train`; the stack's combiner also
 * needs the network's probabilities on cells it did not train on (`validation`, asked for only then).
 */
export async function fitFusion(
  fusion: Exclude<FusionKind, 'none'>,
  train: FusionExample[],
  validation: () => Promise<{ cells: FusionExample[]; cnn: number[] }>,
): Promise<MorphologyStack> {
  switch (fusion) {
    case 'morphology-blend':
    case 'texture-blend':
      return blendStack(train, fusionFeatures(fusion));
    case 'morphology-stack': {
      const { cells, cnn } = await validation();
      return fitMorphologyStack(train, cells, cnn);
    }
    default: {
      const never: never = fusion;
      throw new Error(`Unhandled fusion '${String(never)}'.`);
    }
  }
}
