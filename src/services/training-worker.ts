import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import { UnreachableCaseError } from '../errors';
import type { JobDispatcher } from '../dispatch/job-dispatcher';
import {
  decideFromFolds,
  DEFAULT_RECIPE_OPTIONS,
  planFolds,
  validateRecipeOptions,
  type FoldOutput,
  type RecipeOptions,
} from '../ml/decisions';
import { servedProbabilities, type MeasuredExample } from '../ml/evaluation/evaluate';
import { computeMetrics } from '../ml/evaluation/metrics';
import { serializeModel } from '../ml/models/model-io';
import type { TrainProgress, TrainResult } from '../ml/training/train';
import type { JsonDocuments } from '../storage/json-documents';
import { layout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import type { Logger } from '../observability/log';
import { buildModelCard } from './model-card';
import type { ModelCard, ModelRegistry } from './models';
import { FINAL_STATUSES, type JobRecord, type Snapshot } from './training';
import { loadJobData, type LoadedJobData, type LoadedSnapshot } from './training-data';
import { JOB_LEASE, JobLease } from './training-lease';
import { failureOf, finishedJob, now, storedFold, UnitRun, workerTimings } from './training-run';

export interface WorkerInvocation {
  jobId: string;
  /**
   * Identifies this invocation. Lambda keeps the request id across the retries of one async event, so a
   * retry after a crash may take over its own lease at once; any other invocation waits for expiry.
   */
  invocationId: string;
  remainingMs: () => number;
}

export interface WorkerDeps {
  store: ObjectStore;
  docs: JsonDocuments;
  models: ModelRegistry;
  dispatcher: JobDispatcher;
  log: Logger;
  leaseMs?: number;
  /** See LYMPHOSCOPE_WORKER_SAFETY_MS, _WORKER_LEASE_MS, _FOLD_CONCURRENCY and _RECIPE_* in src/config.ts. */
  config?: {
    workerSafetyMs: number;
    workerLeaseMs?: number;
    foldConcurrency?: number;
    recipe?: RecipeOptions;
  };
  /** Folds and seeds of the out-of-fold decisions, over config.recipe (default: 5 folds x 3 seeds). */
  recipe?: RecipeOptions;
}

/**
 * The share of job.progress the cross-validation folds take; the served network's epochs take the rest.
 * Folds come first, so progress only grows.
 */
const FOLDS_SHARE = 0.5;

/** The job's recipe options: the deps', else the configuration's, else the defaults. */
export function recipeOf(deps: Pick<WorkerDeps, 'recipe' | 'config'>): RecipeOptions {
  return validateRecipeOptions(deps.recipe ?? deps.config?.recipe ?? DEFAULT_RECIPE_OPTIONS);
}

export type Outcome = 'skipped' | 'succeeded' | 'failed' | 'cancelled' | 'continued';

/** How a training step ended when it did not complete: the job is cancelled, or out of time. */
type Stopped = 'cancelled' | 'paused';

/**
 * Runs one training job for as long as this invocation's time allows, in two phases (src/ml/decisions):
 * 1. subject-grouped cross-validation folds over the train and validation cells, one seed after another,
 *    each fold a unit of work whose out-of-fold scores are stored at jobs/<id>/folds/<seed>-<fold>.json
 *    (with its own epoch checkpoint while it runs), so a new invocation skips finished folds and resumes
 *    the one in flight;
 * 2. the served network, trained on the train split with early stopping on validation, checkpointed after
 *    every epoch (job.epoch and job.history are this network's).
 * Calibration, threshold, review band and out-of-domain threshold are then fitted on the folds'
 * out-of-fold scores, never on the test split, which only reports. When the time left would not fit
 * another epoch the worker stops, releases the lease and invokes the next one. Transient failures
 * (storage unavailable, a crash) are thrown so Lambda retries the event; a job that cannot succeed (bad
 * data) is marked FAILED.
 */
export async function runTrainingJob(deps: WorkerDeps, invocation: WorkerInvocation): Promise<Outcome> {
  const log = deps.log.child({ jobId: invocation.jobId, invocationId: invocation.invocationId });
  const { leaseMs, safetyMs } = workerTimings(deps);
  const jobKey = layout.job(invocation.jobId);
  const lease = new JobLease(deps.docs, jobKey, invocation.invocationId, leaseMs, JOB_LEASE);
  const claim = await claimJob(lease);
  switch (claim.kind) {
    case 'skip':
      log.info('training worker skipped', { reason: claim.reason });
      return 'skipped';
    case 'cancelled':
      return 'cancelled';
    case 'run':
      break;
    default:
      throw new UnreachableCaseError(claim);
  }
  log.info('training worker started', { attempt: lease.job.attempts, epoch: lease.job.epoch });
  lease.startHeartbeat(log);
  try {
    const loaded = await loadJobData(deps, lease.job, log);
    const run = new UnitRun({
      ...deps,
      log,
      lease,
      data: loaded.data,
      remainingMs: invocation.remainingMs,
      safetyMs,
      stopWhen: (job) => job?.cancelRequested ?? false,
    });
    const folds = await trainFoldsInTurn(deps, run);
    if (folds.status !== 'completed') return await stopJob(deps, run, folds.status, invocation);
    const served = await trainServedNetworkOfJob(run);
    if (served.status !== 'completed') return await stopJob(deps, run, served.status, invocation);
    return await registerAndSucceed(deps, run, { ...loaded, folds: folds.outputs, result: served });
  } catch (error) {
    return await failTrainingJob(lease, error, log);
  } finally {
    lease.stopHeartbeat();
  }
}

type JobClaim = { kind: 'run' } | { kind: 'cancelled' } | { kind: 'skip'; reason: string };

/** Takes the job's lease and marks it RUNNING; a job that ended, or is another's, is left as it is. */
function claimJob(lease: JobLease): Promise<JobClaim> {
  return lease.acquire<JobClaim>((job) => {
    if (FINAL_STATUSES.has(job.status))
      return { job, verdict: { kind: 'skip', reason: `job already ${job.status}` } };
    const holder = lease.heldElsewhere(job.lease);
    if (holder) return { job, verdict: { kind: 'skip', reason: `lease held by ${holder}` } };
    if (job.cancelRequested) return { job: finishedJob(job, 'CANCELLED'), verdict: { kind: 'cancelled' } };
    const at = now();
    const running: JobRecord = {
      ...job,
      status: 'RUNNING',
      attempts: job.attempts + 1,
      startedAt: job.startedAt ?? at,
      updatedAt: at,
      lease: lease.fresh(),
    };
    return { job: running, verdict: { kind: 'run' } };
  });
}

/**
 * Phase 1: every fold of every seed in turn, skipping those an earlier invocation stored. Pausing before
 * this invocation has trained a fold would only hand the same state to the next one, so it does not.
 */
async function trainFoldsInTurn(
  deps: WorkerDeps,
  run: UnitRun,
): Promise<{ status: 'completed'; outputs: FoldOutput[] } | { status: Stopped }> {
  const { lease, data, log } = run;
  const job = lease.job;
  const cells = [...data.train, ...data.validation];
  const byId = new Map(cells.map((c) => [c.id, c]));
  const tasks = planFolds(cells, job.config, recipeOf(deps));
  const outputs: FoldOutput[] = [];
  let foldsRunHere = 0;
  for (const [index, task] of tasks.entries()) {
    const stored = await storedFold(deps.docs, job.id, task);
    if (stored) {
      outputs.push(stored);
      continue;
    }
    if (await run.shouldCancel()) return { status: 'cancelled' };
    if (foldsRunHere > 0 && run.shouldPause()) return { status: 'paused' };
    const progress = (fraction: number) => (FOLDS_SHARE * (index + fraction)) / tasks.length;
    const fold = await run.trainFold(task, byId, {
      onProgress: (p) =>
        run.reportProgress(p, { progress: progress(progressOf(p)), imagesPerSecond: p.imagesPerSecond }),
    });
    if (fold.status !== 'completed') return fold;
    foldsRunHere++;
    outputs.push(fold.output);
    await lease.writeRenewing((j) => ({ ...j, progress: progress(1), updatedAt: now() }));
    const { bestEpoch, trainSeconds } = fold.output;
    log.info('fold finished', {
      seed: task.seed,
      fold: task.fold,
      of: tasks.length,
      bestEpoch,
      seconds: Math.round(trainSeconds),
    });
    run.startEpoch();
  }
  return { status: 'completed', outputs };
}

/** Phase 2: the served network; job.epoch and job.history follow its checkpoints. */
function trainServedNetworkOfJob(run: UnitRun): Promise<TrainResult> {
  const afterFolds = (fraction: number) => FOLDS_SHARE + (1 - FOLDS_SHARE) * fraction;
  return run.trainServedNetwork({
    onProgress: (p) =>
      run.reportProgress(p, {
        progress: afterFolds(progressOf(p)),
        etaSeconds: p.etaSeconds,
        imagesPerSecond: p.imagesPerSecond,
      }),
    afterCheckpoint: async (cp) => {
      await run.lease.writeRenewing((j) => ({
        ...j,
        epoch: cp.epoch,
        history: cp.history,
        progress: afterFolds(cp.epoch / j.config.epochs),
        imagesPerSecond: run.lastProgress?.imagesPerSecond ?? j.imagesPerSecond,
        updatedAt: now(),
      }));
      run.log.info('epoch checkpointed', { ...cp.history[cp.history.length - 1], epoch: cp.epoch });
    },
  });
}

/** Cancelled: the job ends CANCELLED. Out of time: the lease is released and the next invocation sent. */
async function stopJob(
  deps: WorkerDeps,
  { lease, log }: UnitRun,
  stopped: Stopped,
  invocation: WorkerInvocation,
): Promise<Outcome> {
  switch (stopped) {
    case 'cancelled':
      await lease.write((j) => finishedJob(j, 'CANCELLED'));
      log.info('training cancelled', { epoch: lease.job.epoch });
      return 'cancelled';
    case 'paused':
      await lease.handOn(deps.dispatcher, { jobId: lease.job.id });
      log.info('training continues in a new invocation', {
        epoch: lease.job.epoch,
        remainingMs: invocation.remainingMs(),
      });
      return 'continued';
    default:
      throw new UnreachableCaseError(stopped);
  }
}

/** Registers the version made of the served network and the folds, and marks the job SUCCEEDED. */
async function registerAndSucceed(
  deps: WorkerDeps,
  { lease, log }: UnitRun,
  parts: LoadedJobData & { folds: FoldOutput[]; result: TrainResult },
): Promise<Outcome> {
  const model = parts.result.model!;
  try {
    const card = await registerTrainedModel(deps, { ...parts, job: lease.job, model });
    await lease.write((j) =>
      finishedJob(j, 'SUCCEEDED', {
        modelVersion: card.version,
        progress: 1,
        etaSeconds: 0,
        history: parts.result.history,
      }),
    );
    log.info('training succeeded', {
      modelVersion: card.version,
      testMetrics: card.testMetrics,
      outOfFold: card.decisions?.outOfFold,
    });
    return 'succeeded';
  } finally {
    model.dispose();
  }
}

/** A lost lease stops quietly; anything else but a transient failure (thrown on) fails the job. */
async function failTrainingJob(lease: JobLease, error: unknown, log: Logger): Promise<Outcome> {
  const failure = failureOf(error);
  switch (failure.kind) {
    case 'lease-lost':
      log.warn('training worker lost its lease; stopping', { newOwner: failure.owner });
      return 'skipped';
    case 'failed': {
      log.error('training failed', { error });
      const message = failure.message ?? 'Internal error during training; see the worker log.';
      await lease
        .write((j) => finishedJob(j, 'FAILED', { error: message }))
        .catch((e) => log.error('could not mark the job failed', { error: e }));
      return 'failed';
    }
    default:
      throw new UnreachableCaseError(failure);
  }
}

/** What the version is made of: the served network, the folds' out-of-fold outputs and the loaded snapshot. */
export interface TrainedParts {
  job: JobRecord;
  snapshot: Snapshot;
  data: LoadedSnapshot;
  folds: FoldOutput[];
  model: tf.LayersModel;
  result: Pick<TrainResult, 'history' | 'bestEpoch' | 'trainingRuntime'>;
  runtime: { backend: string };
}

/**
 * Fits the decisions on the folds' out-of-fold scores (never on the test split, which only reports),
 * measures the served network on validation and test, and registers the version with its card.
 */
export async function registerTrainedModel(
  deps: Pick<WorkerDeps, 'models'>,
  { job, snapshot, data, folds, model, result, runtime }: TrainedParts,
): Promise<ModelCard> {
  const cells = [...data.train, ...data.validation];
  const decided = decideFromFolds(cells, job.config, folds, data.domain);
  const { decisions } = decided;
  const rule = { ...job.config, fusion: decided.fusion, calibration: decisions.calibration };
  const metricsOn = async (split: MeasuredExample[]) => {
    const labels = split.map((e) => e.label);
    const probabilities = await servedProbabilities(model, rule, split);
    return { labels, probabilities, metrics: computeMetrics(labels, probabilities, decisions.threshold) };
  };
  const test = await metricsOn(data.test);
  const validation = await metricsOn(data.validation);
  const bundle = await serializeModel(model);
  const parentVersion = await deps.models.productionVersion();
  const card = await deps.models.register(
    bundle,
    buildModelCard({
      config: job.config,
      trainedOnBackend: runtime.backend,
      training: result,
      recipe: decided,
      trainingImageSha256: cells.map((c) => data.sha256.get(c.id)!),
      testMetrics: test.metrics,
      validationMetrics: validation.metrics,
      lineage: {
        jobId: job.id,
        datasetId: job.datasetId,
        snapshotId: job.snapshotId,
        parentVersion,
        testSplitId: testSplitId(snapshot),
      },
      curve: test,
      morphologyNorms: data.norms,
      notes: data.rejected.length
        ? `${data.rejected.length} snapshot images could not be read and were skipped.`
        : null,
    }),
  );
  return card;
}

export function progressOf(p: TrainProgress): number {
  return Math.min(1, ((p.epoch - 1) * p.batchesPerEpoch + p.batch) / (p.epochs * p.batchesPerEpoch));
}

function testSplitId(snapshot: Snapshot): string {
  const ids = snapshot.items
    .filter((i) => i.split === 'test')
    .map((i) => i.imageId)
    .sort();
  return createHash('sha256').update(ids.join(',')).digest('hex').slice(0, 16);
}
