import type * as tf from '@tensorflow/tfjs';
import type { MorphologyStack } from '../features/fusion';
import type { TrainingConfig, TrainProgress, TrainResult } from '../training/train';
import { fitDomainThreshold, type DomainApi, type DomainModel, type OutOfDomainReport } from './domain';
import {
  DEFAULT_RECIPE_OPTIONS,
  domainScoresOf,
  finalDomainModel,
  finalEpochs,
  finalFusion,
  planFolds,
  pooledScores,
  runFold,
  trainFinal,
  type FoldOutput,
  type FoldTask,
  type RecipeCell,
  type RecipeOptions,
} from './out-of-fold';
import { DEFAULT_DECISION_OPTIONS, fitDecisions, type DecisionOptions, type DecisionReport } from './rule';

/** What a model card takes from the recipe besides the network. */
export interface RecipeDecisions {
  decisions: DecisionReport;
  fusion: MorphologyStack | null;
  /** The served domain model with its threshold; null without a detector. */
  outOfDomain: (DomainModel & { threshold: number }) | null;
  outOfDomainReport: OutOfDomainReport | null;
}

/** Calibration, threshold, band, fusion and out-of-domain threshold from finished folds (see fitDecisions). */
export function decideFromFolds(
  cells: RecipeCell[],
  config: TrainingConfig,
  outputs: FoldOutput[],
  domain: DomainApi | null | undefined,
  options: DecisionOptions = DEFAULT_DECISION_OPTIONS,
): RecipeDecisions {
  const decisions = fitDecisions(pooledScores(outputs), options);
  const scores = domainScoresOf(outputs);
  const domainModel = scores.length > 0 ? finalDomainModel(cells, domain) : null;
  let outOfDomain: RecipeDecisions['outOfDomain'] = null;
  let outOfDomainReport: OutOfDomainReport | null = null;
  if (domainModel) {
    const fit = fitDomainThreshold(scores);
    outOfDomain = { ...domainModel, threshold: fit.threshold };
    outOfDomainReport = fit.report;
  }
  return { decisions, fusion: finalFusion(cells, config, outputs), outOfDomain, outOfDomainReport };
}

export interface RecipeResult extends RecipeDecisions {
  /** The served network, trained on all cells; the caller disposes it. */
  model: tf.LayersModel;
  final: TrainResult;
  finalEpochs: number;
  folds: FoldOutput[];
}

/**
 * The whole recipe in one process: every fold of every seed one after another, the decisions from their
 * out-of-fold scores, then the served network trained on all cells. The training worker runs the same
 * pieces (planFolds, runFold, decideFromFolds, trainFinal) with a checkpoint per fold.
 */
export async function fitRecipe(
  cells: RecipeCell[],
  config: TrainingConfig,
  options: RecipeOptions = DEFAULT_RECIPE_OPTIONS,
  hooks: {
    domain?: DomainApi | null;
    onFoldProgress?: (task: FoldTask, index: number, total: number, p: TrainProgress) => void;
    /** Awaited, so what it stores is durable before the next fold starts. */
    onFold?: (output: FoldOutput, index: number, total: number) => void | Promise<void>;
    onFinalProgress?: (p: TrainProgress) => void;
    decisionOptions?: DecisionOptions;
  } = {},
): Promise<RecipeResult> {
  const tasks = planFolds(cells, config, options);
  const byId = new Map(cells.map((c) => [c.id, c]));
  const outputs: FoldOutput[] = [];
  for (const [index, task] of tasks.entries()) {
    const run = await runFold(task, byId, config, {
      domain: hooks.domain,
      onProgress: (p) => hooks.onFoldProgress?.(task, index, tasks.length, p),
    });
    if (run.status !== 'completed')
      throw new Error(`Fold ${task.fold} of seed ${task.seed} did not complete.`);
    outputs.push(run.output);
    await hooks.onFold?.(run.output, index, tasks.length);
  }
  const decided = decideFromFolds(cells, config, outputs, hooks.domain, hooks.decisionOptions);
  const epochs = finalEpochs(outputs);
  const final = await trainFinal(cells, config, epochs, { onProgress: hooks.onFinalProgress });
  return { ...decided, model: final.model!, final, finalEpochs: epochs, folds: outputs };
}
