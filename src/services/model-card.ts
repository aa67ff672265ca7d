import type { CrossValidationSummary } from '../ml/evaluation/cross-validation';
import type { RecipeDecisions } from '../ml/decisions/recipe';
import type { BinaryMetrics } from '../ml/evaluation/metrics';
import { curvePoints } from '../ml/evaluation/metrics';
import type { MorphologyNorms } from '../ml/features/morphology';
import { PREPROCESSING } from '../ml/preprocessing';
import type { TrainResult } from '../ml/training/train';
import type { ModelCard, NewModelCard } from './models';

/** What a finished recipe knows that goes into its model's card; the builder derives the rest. */
export interface ModelCardInput {
  /** The training configuration as recorded (with the split fractions it was run with). */
  config: NonNullable<ModelCard['config']>;
  /** The TF.js backend the network was defined and saved with. */
  trainedOnBackend: string;
  /** The served network's training run. */
  training: Pick<TrainResult, 'trainingRuntime' | 'trainingFallback' | 'history' | 'bestEpoch'>;
  /** Threshold, band, calibration, fusion and out-of-domain model fitted on out-of-fold scores. */
  recipe: RecipeDecisions;
  /** A cross-validation summary to quote (the CLI's --cv-summary); omitted: the card has no such key. */
  crossValidation?: CrossValidationSummary | null;
  /** sha256 of every training image, in any order. */
  trainingImageSha256: string[];
  testMetrics: BinaryMetrics | null;
  validationMetrics: BinaryMetrics | null;
  lineage: ModelCard['lineage'];
  /** The labels and served probabilities the ROC and PR curves are drawn from. */
  curve: { labels: number[]; probabilities: number[] };
  morphologyNorms: MorphologyNorms | null;
  notes: string | null;
}

/**
 * The one builder of a model card, for the training worker and `lymphoscope train` alike, so a field
 * added to the card is added once. The key order is the card's order in card.json.
 */
export function buildModelCard(input: ModelCardInput): NewModelCard {
  const { config, recipe } = input;
  const { decisions } = recipe;
  const curves = curvePoints(input.curve.labels, input.curve.probabilities);
  return {
    architecture: config.architecture,
    inputSize: config.inputSize,
    trainedOnBackend: input.trainedOnBackend,
    trainingRuntime: input.training.trainingRuntime,
    ...(input.training.trainingFallback ? { trainingFallback: input.training.trainingFallback } : {}),
    config,
    testTimeAugmentation: config.testTimeAugmentation === true,
    fusion: recipe.fusion,
    ...(input.crossValidation !== undefined ? { crossValidation: input.crossValidation } : {}),
    threshold: decisions.threshold,
    reviewLow: decisions.reviewLow,
    reviewHigh: decisions.reviewHigh,
    calibration: decisions.calibration,
    decisions,
    outOfDomain: recipe.outOfDomain,
    outOfDomainReport: recipe.outOfDomainReport,
    trainingImageSha256: [...input.trainingImageSha256].sort(),
    testMetrics: input.testMetrics,
    validationMetrics: input.validationMetrics,
    history: input.training.history,
    bestEpoch: input.training.bestEpoch,
    lineage: input.lineage,
    rocCurve: curves.roc,
    prCurve: curves.pr,
    morphologyNorms: input.morphologyNorms,
    preprocessing: PREPROCESSING,
    notes: input.notes,
  };
}
