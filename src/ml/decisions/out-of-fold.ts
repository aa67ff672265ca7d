import { badInput } from '../../errors';
import type { CvItem } from '../evaluation/cross-validation';
import { predictProbabilities } from '../evaluation/evaluate';
import {
  blendStack,
  fitFusion,
  fitMorphologyStack,
  fuse,
  fusionFeatures,
  type MorphologyStack,
} from '../features/fusion';
import { augmenterFor } from '../image/preprocess';
import { kFoldBySubject, splitBySubject } from '../data/splits';
import {
  train,
  validateTrainingConfig,
  type TrainArgs,
  type TrainingConfig,
  type TrainResult,
} from '../training/train';
import { recipeCountProblem, type RecipeOptions } from './recipe-options';
import { heldOutDomainFlags, type DomainApi, type DomainModel, type DomainScores } from './domain';
import type { OofScores } from './rule';

/** A training cell as the recipe needs it; domainFeatures when the build has the out-of-domain detector. */
export interface RecipeCell extends CvItem {
  domainFeatures?: Float64Array | null;
}

/**
 * One fold of one seed: a unit of work with plain, JSON-storable inputs and outputs, so a fold can run in
 * this process, in a later invocation after a pause, or (issue 16) in a Lambda of its own.
 */
export interface FoldTask {
  seed: number;
  /** 0-based. */
  fold: number;
  folds: number;
  trainIds: string[];
  testIds: string[];
}

export interface FoldOutput {
  seed: number;
  fold: number;
  testIds: string[];
  testLabels: Array<0 | 1>;
  /** What serving decides on before calibration: the network (8 views with TTA), fused when the recipe fuses. */
  probabilities: number[];
  /** The network alone, before fusion. */
  networkProbabilities: number[];
  /** Out-of-domain scores of the test cells under a domain model fitted on this fold's training cells; null without a detector. */
  domainScores: number[] | null;
  bestEpoch: number;
  epochs: number;
  trainSeconds: number;
  trainingRuntime: TrainResult['trainingRuntime'];
}

export { DEFAULT_RECIPE_OPTIONS, type RecipeOptions } from './recipe-options';

/** Share of a fold's training subjects held out for early stopping (never for any decision). */
const INNER_VALIDATION = 0.25;

export function validateRecipeOptions(options: RecipeOptions): RecipeOptions {
  const { folds, seeds } = options;
  const problem = recipeCountProblem('folds', folds) ?? recipeCountProblem('seeds', seeds);
  if (problem) throw badInput(problem);
  return { folds, seeds };
}

/** Every fold of every seed, in the order they run. The same cells and config give the same plan. */
export function planFolds(cells: RecipeCell[], config: TrainingConfig, options: RecipeOptions): FoldTask[] {
  const { folds, seeds } = validateRecipeOptions(options);
  const tasks: FoldTask[] = [];
  for (let s = 0; s < seeds; s++) {
    const seed = config.seed + s;
    kFoldBySubject(cells, folds, seed).forEach((split, fold) =>
      tasks.push({
        seed,
        fold,
        folds,
        trainIds: split.train.map((c) => c.id),
        testIds: split.test.map((c) => c.id),
      }),
    );
  }
  return tasks;
}

/** train()'s hooks, passed through as they are, and the out-of-domain scorer. */
export interface FoldHooks extends TrainHooks {
  domain?: DomainApi | null;
}

type TrainHooks = Pick<
  TrainArgs,
  'onProgress' | 'resumeFrom' | 'onCheckpoint' | 'shouldCancel' | 'shouldPause' | 'onTrainingFallback'
>;

/** train() with the recipe's augmentation and the caller's hooks. */
function trainWithHooks(
  config: TrainingConfig,
  examples: Pick<TrainArgs, 'train' | 'validation'>,
  { domain: _domain, ...hooks }: FoldHooks,
): Promise<TrainResult> {
  return train({ config, ...examples, augment: augmenterFor(config), ...hooks });
}

export type FoldRun = { status: 'completed'; output: FoldOutput } | { status: 'paused' | 'cancelled' };

/**
 * Trains the fold's network on its training subjects (early stopping on a quarter of them) and scores its
 * test subjects the way the recipe serves. Nothing is chosen on the test cells.
 */
export async function runFold(
  task: FoldTask,
  cellsById: Map<string, RecipeCell>,
  configIn: TrainingConfig,
  hooks: FoldHooks = {},
): Promise<FoldRun> {
  const config = { ...validateTrainingConfig(configIn), seed: task.seed };
  const pick = (ids: string[]) =>
    ids.map((id) => {
      const cell = cellsById.get(id);
      if (!cell) throw badInput(`Fold ${task.fold} of seed ${task.seed} names an unknown cell '${id}'.`);
      return cell;
    });
  const trainCells = pick(task.trainIds);
  const test = pick(task.testIds);
  const inner = splitBySubject(trainCells, {
    validationFraction: INNER_VALIDATION,
    testFraction: 0,
    seed: task.seed + task.fold,
  });
  const started = performance.now();
  const toExample = (c: RecipeCell) => ({ pixels: c.pixels, label: c.label });
  const result = await trainWithHooks(
    config,
    { train: inner.train.map(toExample), validation: inner.validation.map(toExample) },
    hooks,
  );
  if (result.status !== 'completed') return { status: result.status };
  const model = result.model!;
  try {
    const tta = { tta: config.testTimeAugmentation };
    const network = await predictProbabilities(model, test, config.inputSize, tta);
    let probabilities = network;
    if (config.fusion !== 'none') {
      const stack = await fitFusion(config.fusion, inner.train, async () => ({
        cells: inner.validation,
        cnn: await predictProbabilities(model, inner.validation, config.inputSize, tta),
      }));
      probabilities = test.map((c, i) => fuse(stack, network[i], c.morphology));
    }
    let domainScores: number[] | null = null;
    const domain = hooks.domain;
    if (domain && trainCells.every((c) => c.domainFeatures) && test.every((c) => c.domainFeatures)) {
      const domainModel = domain.fitDomainModel(trainCells.map((c) => c.domainFeatures!));
      domainScores = test.map((c) => domain.domainScore(domainModel, c.domainFeatures!));
    }
    return {
      status: 'completed',
      output: {
        seed: task.seed,
        fold: task.fold,
        testIds: task.testIds,
        testLabels: test.map((c) => c.label),
        probabilities,
        networkProbabilities: network,
        domainScores,
        bestEpoch: result.bestEpoch,
        epochs: result.history.length,
        trainSeconds: (performance.now() - started) / 1000,
        trainingRuntime: result.trainingRuntime,
      },
    };
  } finally {
    model.dispose();
  }
}

/**
 * Each seed's folds pooled into one out-of-fold score per cell, with each cell's out-of-domain flag judged
 * against its fold's held-out threshold when every fold of the seed has domain scores.
 */
export function pooledScores(outputs: FoldOutput[]): OofScores[] {
  const seeds = [...new Set(outputs.map((o) => o.seed))].sort((a, b) => a - b);
  return seeds.map((seed) => {
    const mine = outputs.filter((o) => o.seed === seed).sort((a, b) => a.fold - b.fold);
    const scores: OofScores = {
      seed,
      ids: mine.flatMap((o) => o.testIds),
      labels: mine.flatMap((o) => o.testLabels),
      folds: mine.flatMap((o) => o.testIds.map(() => o.fold)),
      probabilities: mine.flatMap((o) => o.probabilities),
    };
    const flags = mine.every((o) => o.domainScores !== null) ? heldOutDomainFlags(domainScoresOf(mine)) : [];
    if (flags.length > 0 && flags.every((f) => f !== null)) scores.outOfDomain = flags.flat() as boolean[];
    return scores;
  });
}

/** The out-of-fold domain scores per fold, for fitDomainThreshold; empty when no fold had a detector. */
export function domainScoresOf(outputs: FoldOutput[]): DomainScores[] {
  return outputs
    .filter((o) => o.domainScores !== null)
    .map((o) => ({ seed: o.seed, fold: o.fold, scores: o.domainScores! }));
}

/** The epochs the final model trains for: the median of the folds' best epochs (at least 1). */
export function finalEpochs(outputs: FoldOutput[]): number {
  const best = outputs.map((o) => o.bestEpoch).sort((a, b) => a - b);
  if (best.length === 0) throw badInput('The final model needs at least one finished fold.');
  const mid = Math.floor(best.length / 2);
  const median = best.length % 2 ? best[mid] : (best[mid - 1] + best[mid]) / 2;
  return Math.max(1, Math.round(median));
}

/**
 * The model that serves: the same recipe trained on every training cell for finalEpochs (no cell is left
 * for early stopping; the folds already told us when to stop). "Best epoch" is judged on the training
 * cells themselves without augmentation, which only guards against a last epoch that diverged.
 */
export async function trainFinal(
  cells: RecipeCell[],
  configIn: TrainingConfig,
  epochs: number,
  hooks: Omit<FoldHooks, 'domain'> = {},
): Promise<TrainResult> {
  const config = { ...validateTrainingConfig(configIn), epochs, patience: epochs };
  const examples = cells.map((c) => ({ pixels: c.pixels, label: c.label }));
  return trainWithHooks(config, { train: examples, validation: examples }, hooks);
}

/**
 * The morphology stack the final model serves with: a blend's combiner is fixed; the stack's combiner is fitted on
 * the out-of-fold network probabilities of the first seed (cells the networks never saw), its morphology
 * model on all cells.
 */
export function finalFusion(
  cells: RecipeCell[],
  config: Pick<TrainingConfig, 'fusion'>,
  outputs: FoldOutput[],
): MorphologyStack | null {
  if (config.fusion === 'none') return null;
  if (config.fusion !== 'morphology-stack') return blendStack(cells, fusionFeatures(config.fusion));
  const seed = Math.min(...outputs.map((o) => o.seed));
  const network = new Map<string, number>();
  for (const o of outputs.filter((x) => x.seed === seed))
    o.testIds.forEach((id, i) => network.set(id, o.networkProbabilities[i]));
  const scored = cells.filter((c) => network.has(c.id));
  return fitMorphologyStack(
    cells,
    scored,
    scored.map((c) => network.get(c.id)!),
  );
}

/** The served domain model: fitted on every training cell; null without a detector or features. */
export function finalDomainModel(
  cells: RecipeCell[],
  domain: DomainApi | null | undefined,
): DomainModel | null {
  if (!domain || !cells.every((c) => c.domainFeatures)) return null;
  return domain.fitDomainModel(cells.map((c) => c.domainFeatures!));
}
