import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import { LymphoscopeError } from '../errors';
import type { JobDispatcher } from '../dispatch/job-dispatcher';
import { decodeImage } from '../ml/image/decode';
import { augmenterFor, toModelInput } from '../ml/image/preprocess';
import {
  decideFromFolds,
  DEFAULT_RECIPE_OPTIONS,
  domainApi,
  planFolds,
  runFold,
  validateRecipeOptions,
  type FoldOutput,
  type RecipeCell,
  type RecipeOptions,
} from '../ml/decisions';
import { servedProbabilities, type MeasuredExample } from '../ml/evaluation/evaluate';
import { computeMetrics } from '../ml/evaluation/metrics';
import {
  measureMorphology,
  morphologyNorms,
  type Morphology,
  type MorphologyNorms,
} from '../ml/features/morphology';
import { serializeModel } from '../ml/models/model-io';
import { initRuntime } from '../ml/runtime';
import {
  deserializeCheckpoint,
  serializeCheckpoint,
  train,
  type TrainingCheckpoint,
  type TrainProgress,
  type TrainResult,
} from '../ml/training/train';
import type { JsonDocuments } from '../storage/json-documents';
import { layout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import type { Logger } from '../observability/log';
import { runBounded } from '../concurrency/run-bounded';
import { buildModelCard } from './model-card';
import type { ModelCard, ModelRegistry } from './models';
import { FINAL_STATUSES, type JobRecord, type Snapshot } from './training';

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

const now = () => new Date().toISOString();
const LEASE_MS = 60_000;
const SAFETY_MS = 50_000;
/** Progress is written (and the lease renewed) at most this often. */
const PROGRESS_EVERY_MS = 3_000;

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
  const { docs, store, log: baseLog } = deps;
  const log = baseLog.child({ jobId: invocation.jobId, invocationId: invocation.invocationId });
  const leaseMs = deps.leaseMs ?? deps.config?.workerLeaseMs ?? LEASE_MS;
  const safetyMs = deps.config?.workerSafetyMs ?? SAFETY_MS;
  const jobKey = layout.job(invocation.jobId);

  let skipReason: string | null = null;
  const acquired = await docs.update<JobRecord>(jobKey, (job) => {
    skipReason = null;
    if (FINAL_STATUSES.has(job.status)) {
      skipReason = `job already ${job.status}`;
      return job;
    }
    const leaseLive = job.lease && Date.parse(job.lease.expiresAt) > Date.now();
    if (leaseLive && job.lease!.owner !== invocation.invocationId) {
      skipReason = `lease held by ${job.lease!.owner}`;
      return job;
    }
    if (job.cancelRequested) {
      return { ...job, status: 'CANCELLED', lease: null, finishedAt: now(), updatedAt: now() };
    }
    return {
      ...job,
      status: 'RUNNING',
      attempts: job.attempts + 1,
      startedAt: job.startedAt ?? now(),
      updatedAt: now(),
      lease: { owner: invocation.invocationId, expiresAt: new Date(Date.now() + leaseMs).toISOString() },
    };
  });
  if (skipReason) {
    log.info('training worker skipped', { reason: skipReason });
    return 'skipped';
  }
  let job = acquired.value;
  if (job.status === 'CANCELLED') return 'cancelled';
  log.info('training worker started', { attempt: job.attempts, epoch: job.epoch });

  /** CAS write that also proves we still hold the lease; losing it stops this worker. */
  const writeJob = async (mutate: (j: JobRecord) => JobRecord): Promise<JobRecord> => {
    const { value } = await docs.update<JobRecord>(jobKey, (current) => {
      if (current.lease?.owner !== invocation.invocationId) throw new LeaseLost(current.lease?.owner ?? null);
      return mutate(current);
    });
    job = value;
    return value;
  };

  // Renewed on a timer, not only with progress: loading a large snapshot, or one long batch, must not
  // let the lease lapse while this worker is alive (a reader would then start a second worker).
  const heartbeat = setInterval(
    () => {
      writeJob((j) => ({
        ...j,
        lease: { owner: invocation.invocationId, expiresAt: new Date(Date.now() + leaseMs).toISOString() },
      })).catch((error) => {
        if (!(error instanceof LeaseLost)) log.warn('lease renewal failed', { error: String(error) });
      });
    },
    Math.max(250, leaseMs / 3),
  );

  try {
    const runtime = await initRuntime();
    const snapshot = (await docs.get<Snapshot>(layout.snapshot(job.datasetId, job.snapshotId)))?.value;
    if (!snapshot) throw new JobCannotSucceed(`Snapshot ${job.snapshotId} is missing.`);
    const loadStarted = Date.now();
    const data = await loadSnapshot(store, snapshot, job.config.inputSize);
    log.info('snapshot loaded', {
      images: snapshot.items.length,
      ms: Date.now() - loadStarted,
      rejected: data.rejected.length,
    });

    let lastWrite = 0;
    let lastCancelCheck = 0;
    let cancelRequested = false;
    let epochStarted = Date.now();
    let longestEpochMs = 0;
    let lastProgress: TrainProgress | null = null;
    const shouldCancel = async () => {
      if (cancelRequested) return true;
      if (Date.now() - lastCancelCheck < PROGRESS_EVERY_MS) return false;
      lastCancelCheck = Date.now();
      const current = (await docs.get<JobRecord>(jobKey))?.value;
      if (current && current.lease?.owner !== invocation.invocationId)
        throw new LeaseLost(current.lease?.owner ?? null);
      cancelRequested = current?.cancelRequested ?? false;
      return cancelRequested;
    };
    // Stop between epochs when another one (plus evaluation and writes) might not fit the time left.
    const shouldPause = () => invocation.remainingMs() < longestEpochMs * 1.5 + safetyMs;
    const renewedLease = () => ({
      owner: invocation.invocationId,
      expiresAt: new Date(Date.now() + leaseMs).toISOString(),
    });
    const cancel = async () => {
      await writeJob((j) => ({
        ...j,
        status: 'CANCELLED',
        lease: null,
        finishedAt: now(),
        updatedAt: now(),
      }));
      log.info('training cancelled', { epoch: job.epoch });
      return 'cancelled' as const;
    };
    const pause = async () => {
      await writeJob((j) => ({ ...j, lease: null, updatedAt: now() }));
      await deps.dispatcher.dispatch({ jobId: job.id });
      log.info('training continues in a new invocation', {
        epoch: job.epoch,
        remainingMs: invocation.remainingMs(),
      });
      return 'continued' as const;
    };

    // Phase 1: the cross-validation folds the decisions are fitted on.
    const recipe = recipeOf(deps);
    const cells = [...data.train, ...data.validation];
    const byId = new Map(cells.map((c) => [c.id, c]));
    const tasks = planFolds(cells, job.config, recipe);
    const folds: FoldOutput[] = [];
    // Pausing before this invocation has done any work would only hand the same state to the next one.
    let foldsRunHere = 0;
    for (const [index, task] of tasks.entries()) {
      const foldKey = layout.jobFold(job.id, task.seed, task.fold);
      const done = (await docs.get<FoldOutput>(foldKey))?.value;
      if (done) {
        folds.push(done);
        continue;
      }
      if (await shouldCancel()) return await cancel();
      if (foldsRunHere > 0 && shouldPause()) return await pause();
      const cpKey = layout.jobFoldCheckpoint(job.id, task.seed, task.fold);
      const cpObject = await store.get(cpKey);
      const foldProgress = (fraction: number) => (FOLDS_SHARE * (index + fraction)) / tasks.length;
      const run = await runFold(task, byId, job.config, {
        domain: data.domain,
        resumeFrom: cpObject ? deserializeCheckpoint(cpObject.body) : undefined,
        onProgress: (p) => {
          lastProgress = p;
          if (Date.now() - lastWrite < PROGRESS_EVERY_MS) return;
          lastWrite = Date.now();
          void writeJob((j) => ({
            ...j,
            progress: foldProgress(progressOf(p)),
            imagesPerSecond: p.imagesPerSecond,
            updatedAt: now(),
            lease: renewedLease(),
          })).catch((error) => log.warn('progress write failed', { error }));
        },
        onCheckpoint: async (cp) => {
          longestEpochMs = Math.max(longestEpochMs, Date.now() - epochStarted);
          epochStarted = Date.now();
          await store.put(cpKey, serializeCheckpoint(cp), { contentType: 'application/octet-stream' });
        },
        shouldCancel,
        shouldPause,
      });
      if (run.status !== 'completed') return run.status === 'cancelled' ? await cancel() : await pause();
      foldsRunHere++;
      await docs.put(foldKey, run.output);
      await store.delete(cpKey).catch(() => undefined);
      folds.push(run.output);
      await writeJob((j) => ({
        ...j,
        progress: foldProgress(1),
        updatedAt: now(),
        lease: renewedLease(),
      }));
      log.info('fold finished', {
        seed: task.seed,
        fold: task.fold,
        of: tasks.length,
        bestEpoch: run.output.bestEpoch,
        seconds: Math.round(run.output.trainSeconds),
      });
      epochStarted = Date.now();
    }

    // Phase 2: the served network.
    const checkpointObject = await store.get(layout.jobCheckpoint(job.id));
    const resumeFrom: TrainingCheckpoint | undefined = checkpointObject
      ? deserializeCheckpoint(checkpointObject.body)
      : undefined;
    if (resumeFrom) log.info('resuming from checkpoint', { epoch: resumeFrom.epoch });

    epochStarted = Date.now();
    const result = await train({
      config: job.config,
      train: data.train,
      validation: data.validation,
      resumeFrom,
      augment: augmenterFor(job.config),
      onTrainingFallback: (reason) => log.warn('training falls back to TF.js', { reason }),
      onProgress: (p) => {
        lastProgress = p;
        if (Date.now() - lastWrite < PROGRESS_EVERY_MS) return;
        lastWrite = Date.now();
        void writeJob((j) => ({
          ...j,
          progress: FOLDS_SHARE + (1 - FOLDS_SHARE) * progressOf(p),
          etaSeconds: p.etaSeconds,
          imagesPerSecond: p.imagesPerSecond,
          updatedAt: now(),
          lease: { owner: invocation.invocationId, expiresAt: new Date(Date.now() + leaseMs).toISOString() },
        })).catch((error) => log.warn('progress write failed', { error }));
      },
      onCheckpoint: async (cp) => {
        longestEpochMs = Math.max(longestEpochMs, Date.now() - epochStarted);
        epochStarted = Date.now();
        await store.put(layout.jobCheckpoint(job.id), serializeCheckpoint(cp), {
          contentType: 'application/octet-stream',
        });
        await writeJob((j) => ({
          ...j,
          epoch: cp.epoch,
          history: cp.history,
          progress: FOLDS_SHARE + ((1 - FOLDS_SHARE) * cp.epoch) / j.config.epochs,
          imagesPerSecond: lastProgress?.imagesPerSecond ?? j.imagesPerSecond,
          updatedAt: now(),
          lease: { owner: invocation.invocationId, expiresAt: new Date(Date.now() + leaseMs).toISOString() },
        }));
        log.info('epoch checkpointed', { ...cp.history[cp.history.length - 1], epoch: cp.epoch });
      },
      shouldCancel,
      shouldPause: () => invocation.remainingMs() < longestEpochMs * 1.5 + safetyMs,
    });

    if (result.status === 'cancelled') return await cancel();
    if (result.status === 'paused') return await pause();

    const model = result.model!;
    try {
      const card = await registerTrainedModel(deps, { job, snapshot, data, folds, model, result, runtime });
      await writeJob((j) => ({
        ...j,
        status: 'SUCCEEDED',
        modelVersion: card.version,
        progress: 1,
        etaSeconds: 0,
        history: result.history,
        lease: null,
        finishedAt: now(),
        updatedAt: now(),
      }));
      log.info('training succeeded', {
        modelVersion: card.version,
        testMetrics: card.testMetrics,
        outOfFold: card.decisions?.outOfFold,
      });
      return 'succeeded';
    } finally {
      model.dispose();
    }
  } catch (error) {
    if (error instanceof LeaseLost) {
      log.warn('training worker lost its lease; stopping', { newOwner: error.owner });
      return 'skipped';
    }
    const transient = error instanceof LymphoscopeError && error.code === 'UNAVAILABLE';
    if (transient) throw error; // Lambda retries the event; the retry resumes from the checkpoint.
    const message =
      error instanceof JobCannotSucceed || error instanceof LymphoscopeError
        ? error.message
        : 'Internal error during training; see the worker log.';
    log.error('training failed', { error });
    await writeJob((j) => ({
      ...j,
      status: 'FAILED',
      error: message,
      lease: null,
      finishedAt: now(),
      updatedAt: now(),
    })).catch((e) => log.error('could not mark the job failed', { error: e }));
    return 'failed';
  } finally {
    clearInterval(heartbeat);
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

export class LeaseLost extends Error {
  constructor(readonly owner: string | null) {
    super(`lease now held by ${owner}`);
  }
}

export class JobCannotSucceed extends Error {}

export function progressOf(p: TrainProgress): number {
  return Math.min(1, ((p.epoch - 1) * p.batchesPerEpoch + p.batch) / (p.epochs * p.batchesPerEpoch));
}

export interface LoadedSnapshot {
  train: RecipeCell[];
  validation: RecipeCell[];
  test: RecipeCell[];
  /** Content hash of each cell, by id (the snapshot key). */
  sha256: Map<string, string>;
  domain: ReturnType<typeof domainApi>;
  norms: MorphologyNorms | null;
  rejected: string[];
}

/** Decodes and resizes every image of the snapshot once, and measures every cell (norms, morphology stack). */
export async function loadSnapshot(
  store: ObjectStore,
  snapshot: Snapshot,
  inputSize: number,
): Promise<LoadedSnapshot> {
  const domain = domainApi();
  const out: LoadedSnapshot = {
    train: [],
    validation: [],
    test: [],
    sha256: new Map(),
    domain,
    norms: null,
    rejected: [],
  };
  const measured: Array<{ m: Morphology; label: 0 | 1 }> = [];
  const bySplit = new Map<string, RecipeCell>();
  await runBounded(
    snapshot.items.map((item) => async () => {
      const object = await store.get(item.key);
      if (!object) {
        out.rejected.push(item.key);
        return;
      }
      const image = await decodeImage(object.body);
      const morphology = measureMorphology(image);
      out.sha256.set(item.key, createHash('sha256').update(object.body).digest('hex'));
      bySplit.set(item.key, {
        id: item.key,
        subjectId: item.subjectId,
        pixels: await toModelInput(image, inputSize),
        label: item.label,
        morphology,
        domainFeatures: domain ? domain.domainFeatures(image) : null,
      });
      if (item.split === 'train') measured.push({ m: morphology, label: item.label });
    }),
    4,
  );
  // Keep the snapshot's order (not the order decoding finished), so training is reproducible.
  for (const item of snapshot.items) {
    const example = bySplit.get(item.key);
    if (example) out[item.split].push(example);
  }
  out.norms = morphologyNorms(measured);
  if (out.train.length === 0 || out.validation.length === 0 || out.test.length === 0) {
    throw new JobCannotSucceed('After skipping unreadable images a split is empty.');
  }
  return out;
}

function testSplitId(snapshot: Snapshot): string {
  const ids = snapshot.items
    .filter((i) => i.split === 'test')
    .map((i) => i.imageId)
    .sort();
  return createHash('sha256').update(ids.join(',')).digest('hex').slice(0, 16);
}
