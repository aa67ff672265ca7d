import { badInput } from '../../errors';
import { predictProbabilities } from './evaluate';
import {
  blendStack,
  fitMorphologyModel,
  fitMorphologyStack,
  fuse,
  morphologyProbability,
  TEXTURE_FUSION_FEATURES,
} from '../features/fusion';
import { augmenterFor } from '../image/preprocess';
import { chooseThreshold, computeMetrics, type BinaryMetrics } from './metrics';
import type { Morphology } from '../features/morphology';
import { kFoldBySubject, splitBySubject, type SplitItem } from '../data/splits';
import { train, validateTrainingConfig, type TrainingConfig, type TrainProgress } from '../training/train';

/** One cell as cross-validation needs it: model input, measured morphology, label and subject. */
export interface CvItem extends SplitItem {
  pixels: Float32Array;
  morphology: Morphology;
}

/**
 * The ways a trained fold is turned into probabilities, all scored on the same folds and the same
 * networks, so their differences are paired rather than drowned in fold-to-fold noise:
 * - majority: the training prior for every cell (the dummy baseline);
 * - morphology: a ridge logistic regression on the measured features alone, no pixels;
 * - cnn / cnn-tta: the network, on the cell as given / averaged over its 8 flips and quarter turns;
 * - stack / stack-tta: the network and the morphology model fused by a combiner fitted on validation;
 * - blend / blend-tta: the mean of the two log-odds, nothing fitted on validation;
 * - texture: a ridge logistic regression on the measured features and the chromatin texture, no pixels;
 * - texture-blend / texture-blend-tta: the blend with that model in place of the morphology model.
 * Every scorer's threshold is chosen on the fold's validation part; the test fold chooses nothing.
 */
export const SCORERS = [
  'majority',
  'morphology',
  'cnn',
  'cnn-tta',
  'stack',
  'stack-tta',
  'blend',
  'blend-tta',
  'texture',
  'texture-blend',
  'texture-blend-tta',
] as const;
export type Scorer = (typeof SCORERS)[number];

/** The scorer a training config serves with. */
export function recipeScorer(config: Pick<TrainingConfig, 'fusion' | 'testTimeAugmentation'>): Scorer {
  const tta = config.testTimeAugmentation;
  if (config.fusion === 'morphology-stack') return tta ? 'stack-tta' : 'stack';
  if (config.fusion === 'morphology-blend') return tta ? 'blend-tta' : 'blend';
  if (config.fusion === 'texture-blend') return tta ? 'texture-blend-tta' : 'texture-blend';
  return tta ? 'cnn-tta' : 'cnn';
}

export const SUMMARY_METRICS = [
  'weightedF1',
  'rocAuc',
  'sensitivity',
  'specificity',
  'balancedAccuracy',
  'accuracy',
] as const;
export type SummaryMetric = (typeof SUMMARY_METRICS)[number];

/** A variant of every cell (recoloured, rescaled, ...), matched to the originals by id. */
export interface CvShift {
  name: string;
  items: CvItem[];
}

export interface CvOptions {
  folds: number;
  /** Repeats with different fold assignments and training seeds (config.seed + repeat). */
  repeats: number;
  /** Share of each fold's training subjects held out to choose thresholds and fit the combiner. */
  validationFraction?: number;
  /** Test folds are also scored on these variants, with the thresholds chosen on the originals. */
  shifts?: CvShift[];
  onProgress?: (fold: FoldId, p: TrainProgress) => void;
  onFold?: (result: FoldResult) => void;
}

export interface FoldId {
  repeat: number;
  fold: number;
  folds: number;
  repeats: number;
}

export interface FoldResult {
  repeat: number;
  fold: number;
  seed: number;
  counts: { train: number; validation: number; test: number };
  bestEpoch: number;
  epochs: number;
  trainSeconds: number;
  scores: Record<Scorer, BinaryMetrics>;
  /** Per shift name, the same scorers on the shifted test fold. */
  shifted: Record<string, Record<Scorer, BinaryMetrics>>;
  /** Test-fold probabilities per scorer, in the order of testIds; pooled AUCs are computed from these. */
  testIds: string[];
  testLabels: Array<0 | 1>;
  testProbabilities: Record<Scorer, number[]>;
}

export interface Spread {
  mean: number;
  std: number;
  /** How many folds had the metric defined (AUC needs both labels in the fold). */
  n: number;
}

export interface CvReport {
  folds: FoldResult[];
  /** Mean and sample standard deviation over every fold of every repeat. */
  summary: Record<Scorer, Record<SummaryMetric, Spread>>;
  /** ROC AUC of each repeat's out-of-fold probabilities pooled over all cells: mean and spread over repeats. */
  pooledRocAuc: Record<Scorer, Spread>;
  shifted: Record<string, Record<Scorer, Record<SummaryMetric, Spread>>>;
  recipeScorer: Scorer;
}

/** What a model card keeps of a cross-validation: the recipe's figures beside both baselines. */
export interface CrossValidationSummary {
  data: string;
  n: number;
  subjects: number;
  folds: number;
  repeats: number;
  scorer: Scorer;
  metrics: Record<SummaryMetric, Spread>;
  pooledRocAuc: Spread;
  baselines: { majority: Record<SummaryMetric, Spread>; morphology: Record<SummaryMetric, Spread> };
}

export function crossValidationSummary(
  report: CvReport,
  about: { data: string; n: number; subjects: number; folds: number; repeats: number },
): CrossValidationSummary {
  const scorer = report.recipeScorer;
  return {
    ...about,
    scorer,
    metrics: report.summary[scorer],
    pooledRocAuc: report.pooledRocAuc[scorer],
    baselines: { majority: report.summary.majority, morphology: report.summary.morphology },
  };
}

const MAX_FOLDS = 20;
const MAX_REPEATS = 20;

/**
 * Subject-grouped k-fold cross-validation, repeated. For each fold, a validation part is carved (by
 * subject) out of the training subjects; the network trains on the rest with the config's recipe, and
 * every scorer is fitted and thresholded without seeing the test fold.
 */
export async function crossValidate(
  items: CvItem[],
  configIn: TrainingConfig,
  options: CvOptions,
): Promise<CvReport> {
  const config = validateTrainingConfig(configIn);
  const { folds, repeats } = options;
  if (!Number.isInteger(folds) || folds < 2 || folds > MAX_FOLDS)
    throw badInput(`folds must be an integer from 2 to ${MAX_FOLDS}, got ${folds}.`);
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > MAX_REPEATS)
    throw badInput(`repeats must be an integer from 1 to ${MAX_REPEATS}, got ${repeats}.`);
  const shiftsById = (options.shifts ?? []).map((shift) => {
    const byId = new Map(shift.items.map((i) => [i.id, i]));
    if (!items.every((i) => byId.has(i.id))) throw badInput(`Shift '${shift.name}' lacks some of the cells.`);
    return { name: shift.name, byId };
  });

  const results: FoldResult[] = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    const seed = config.seed + repeat;
    for (const [index, fold] of kFoldBySubject(items, folds, seed).entries()) {
      const inner = splitBySubject(fold.train, {
        validationFraction: options.validationFraction ?? 0.25,
        testFraction: 0,
        seed: seed + index,
      });
      const id: FoldId = { repeat: repeat + 1, fold: index + 1, folds, repeats };
      const result = await runFold(
        { ...config, seed },
        { train: inner.train, validation: inner.validation, test: fold.test },
        shiftsById,
        (p) => options.onProgress?.(id, p),
      );
      const foldResult: FoldResult = { ...result, repeat: repeat + 1, fold: index + 1, seed };
      results.push(foldResult);
      options.onFold?.(foldResult);
    }
  }
  return summarise(
    results,
    config,
    shiftsById.map((s) => s.name),
  );
}

type FoldSplit = { train: CvItem[]; validation: CvItem[]; test: CvItem[] };

async function runFold(
  config: TrainingConfig,
  split: FoldSplit,
  shifts: Array<{ name: string; byId: Map<string, CvItem> }>,
  onProgress: (p: TrainProgress) => void,
): Promise<Omit<FoldResult, 'repeat' | 'fold' | 'seed'>> {
  const started = performance.now();
  const toExample = (i: CvItem) => ({ pixels: i.pixels, label: i.label });
  const outcome = await train({
    config,
    train: split.train.map(toExample),
    validation: split.validation.map(toExample),
    augment: augmenterFor(config),
    onProgress,
  });
  const model = outcome.model!;
  const trainSeconds = (performance.now() - started) / 1000;
  try {
    const prior = split.train.filter((i) => i.label === 1).length / split.train.length;
    const morphologyModel = fitMorphologyModel(split.train);
    const blend = blendStack(split.train);
    const textureBlend = blendStack(split.train, TEXTURE_FUSION_FEATURES);
    const probabilitiesOf = async (cells: CvItem[]) => {
      const cnn = await predictProbabilities(model, cells, config.inputSize);
      const cnnTta = await predictProbabilities(model, cells, config.inputSize, { tta: true });
      return { cells, cnn, cnnTta };
    };
    const validation = await probabilitiesOf(split.validation);
    const stack = fitMorphologyStack(split.train, split.validation, validation.cnn);
    const stackTta = fitMorphologyStack(split.train, split.validation, validation.cnnTta);
    const score = (p: Awaited<ReturnType<typeof probabilitiesOf>>): Record<Scorer, number[]> => ({
      majority: p.cells.map(() => prior),
      morphology: p.cells.map((c) => morphologyProbability(morphologyModel, c.morphology)),
      cnn: p.cnn,
      'cnn-tta': p.cnnTta,
      stack: p.cells.map((c, i) => fuse(stack, p.cnn[i], c.morphology)),
      'stack-tta': p.cells.map((c, i) => fuse(stackTta, p.cnnTta[i], c.morphology)),
      blend: p.cells.map((c, i) => fuse(blend, p.cnn[i], c.morphology)),
      'blend-tta': p.cells.map((c, i) => fuse(blend, p.cnnTta[i], c.morphology)),
      texture: p.cells.map((c) => morphologyProbability(textureBlend.morphology, c.morphology)),
      'texture-blend': p.cells.map((c, i) => fuse(textureBlend, p.cnn[i], c.morphology)),
      'texture-blend-tta': p.cells.map((c, i) => fuse(textureBlend, p.cnnTta[i], c.morphology)),
    });
    const validationScores = score(validation);
    const validationLabels = split.validation.map((i) => i.label);
    const thresholds = Object.fromEntries(
      SCORERS.map((s) => [s, chooseThreshold(validationLabels, validationScores[s])]),
    ) as Record<Scorer, number>;
    const metricsOn = async (cells: CvItem[]) => {
      const probabilities = score(await probabilitiesOf(cells));
      const labels = cells.map((c) => c.label);
      const metrics = Object.fromEntries(
        SCORERS.map((s) => [s, computeMetrics(labels, probabilities[s], thresholds[s])]),
      ) as Record<Scorer, BinaryMetrics>;
      return { probabilities, metrics };
    };
    const test = await metricsOn(split.test);
    const shifted: FoldResult['shifted'] = {};
    for (const shift of shifts) {
      shifted[shift.name] = (await metricsOn(split.test.map((c) => shift.byId.get(c.id)!))).metrics;
    }
    return {
      counts: { train: split.train.length, validation: split.validation.length, test: split.test.length },
      bestEpoch: outcome.bestEpoch,
      epochs: outcome.history.length,
      trainSeconds,
      scores: test.metrics,
      shifted,
      testIds: split.test.map((c) => c.id),
      testLabels: split.test.map((c) => c.label),
      testProbabilities: test.probabilities,
    };
  } finally {
    model.dispose();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Mean and sample standard deviation of the finite values (NaN when there are none). */
export function spread(values: number[]): Spread {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { mean: NaN, std: NaN, n: 0 };
  const m = mean(finite);
  const variance = finite.reduce((a, v) => a + (v - m) ** 2, 0) / Math.max(1, finite.length - 1);
  return { mean: m, std: Math.sqrt(variance), n: finite.length };
}

function summariseScores(
  perFold: Array<Record<Scorer, BinaryMetrics>>,
): Record<Scorer, Record<SummaryMetric, Spread>> {
  return Object.fromEntries(
    SCORERS.map((s) => [
      s,
      Object.fromEntries(SUMMARY_METRICS.map((m) => [m, spread(perFold.map((f) => f[s][m]))])),
    ]),
  ) as Record<Scorer, Record<SummaryMetric, Spread>>;
}

function summarise(results: FoldResult[], config: TrainingConfig, shiftNames: string[]): CvReport {
  const repeats = [...new Set(results.map((r) => r.repeat))];
  const pooledRocAuc = Object.fromEntries(
    SCORERS.map((s) => {
      const perRepeat = repeats.map((repeat) => {
        const folds = results.filter((r) => r.repeat === repeat);
        const pooledLabels = folds.flatMap((f) => f.testLabels);
        const pooled = folds.flatMap((f) => f.testProbabilities[s]);
        return computeMetrics(pooledLabels, pooled, 0.5).rocAuc;
      });
      return [s, spread(perRepeat)];
    }),
  ) as Record<Scorer, Spread>;
  return {
    folds: results,
    summary: summariseScores(results.map((r) => r.scores)),
    pooledRocAuc,
    shifted: Object.fromEntries(
      shiftNames.map((name) => [name, summariseScores(results.map((r) => r.shifted[name]))]),
    ),
    recipeScorer: recipeScorer(config),
  };
}
