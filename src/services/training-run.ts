import { LymphoscopeError } from '../errors';
import { runFold, type FoldOutput, type FoldTask, type RecipeCell } from '../ml/decisions';
import { augmenterFor } from '../ml/image/preprocess';
import {
  deserializeCheckpoint,
  serializeCheckpoint,
  train,
  type TrainingCheckpoint,
  type TrainProgress,
  type TrainResult,
} from '../ml/training/train';
import type { Logger } from '../observability/log';
import type { JsonDocuments } from '../storage/json-documents';
import { layout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import { JobCannotSucceed, type LoadedSnapshot } from './training-data';
import { LeaseLost, type JobLease } from './training-lease';
import type { JobRecord } from './training';

/**
 * What both training workers share (src/services/training-worker.ts runs a job whole, training-units.ts one
 * unit of it): the timings, the checks between batches and epochs, the checkpoints, the fold and the served
 * network as they are trained, and what a failure means.
 */

const LEASE_MS = 60_000;
const SAFETY_MS = 50_000;
/** job.json is read for a cancel (and progress written) at most this often. */
const CHECK_EVERY_MS = 3_000;

export const now = () => new Date().toISOString();

/** The lease length and the time kept back for the end (LYMPHOSCOPE_WORKER_LEASE_MS, _SAFETY_MS). */
export function workerTimings(deps: {
  leaseMs?: number;
  config?: { workerSafetyMs: number; workerLeaseMs?: number };
}): { leaseMs: number; safetyMs: number } {
  return {
    leaseMs: deps.leaseMs ?? deps.config?.workerLeaseMs ?? LEASE_MS,
    safetyMs: deps.config?.workerSafetyMs ?? SAFETY_MS,
  };
}

/** The job (and its lease) as it ends: SUCCEEDED, FAILED or CANCELLED, with the fields that say how. */
export function finishedJob(
  job: JobRecord,
  status: 'SUCCEEDED' | 'FAILED' | 'CANCELLED',
  fields: Partial<JobRecord> = {},
): JobRecord {
  const at = now();
  return { ...job, ...fields, status, lease: null, finishedAt: at, updatedAt: at };
}

/** True at most once every `ms`. */
function every(ms: number): () => boolean {
  let last = 0;
  return () => {
    if (Date.now() - last < ms) return false;
    last = Date.now();
    return true;
  };
}

/**
 * One invocation's training under its lease: the cancel check between batches, the time check between
 * epochs (with the epochs' timing it needs) and the throttled progress writes.
 */
export class UnitRun {
  /** The last progress train() reported. */
  lastProgress: TrainProgress | null = null;
  private stopRequested = false;
  private readonly checkDue = every(CHECK_EVERY_MS);
  private readonly writeDue = every(CHECK_EVERY_MS);
  private epochStarted = Date.now();
  private longestEpochMs = 0;

  constructor(
    private readonly lease: JobLease,
    private readonly remainingMs: () => number,
    private readonly safetyMs: number,
    /** Whether the job as stored now (null: gone) means this training should stop. */
    private readonly stopWhen: (job: JobRecord | null) => boolean,
    private readonly log: Logger,
  ) {}

  /** Between batches: reads job.json (proving the lease) at most every 3 s; once true, stays true. */
  readonly shouldCancel = async (): Promise<boolean> => {
    if (this.stopRequested) return true;
    if (!this.checkDue()) return false;
    this.stopRequested = this.stopWhen(await this.lease.read());
    return this.stopRequested;
  };

  /** Between epochs: stop when another one (plus evaluation and writes) might not fit the time left. */
  readonly shouldPause = (): boolean => this.remainingMs() < this.longestEpochMs * 1.5 + this.safetyMs;

  startEpoch(): void {
    this.epochStarted = Date.now();
  }

  epochDone(): void {
    this.longestEpochMs = Math.max(this.longestEpochMs, Date.now() - this.epochStarted);
    this.epochStarted = Date.now();
  }

  /** Remembers the progress; writes `fields` with it (renewing the lease) at most every 3 s, never waiting. */
  reportProgress(progress: TrainProgress, fields: Partial<JobRecord>): void {
    this.lastProgress = progress;
    if (!this.writeDue()) return;
    void this.lease
      .writeRenewing((j) => ({ ...j, ...fields, updatedAt: now() }))
      .catch((error) => this.log.warn('progress write failed', { error }));
  }
}

async function readCheckpoint(store: ObjectStore, key: string): Promise<TrainingCheckpoint | undefined> {
  const object = await store.get(key);
  return object ? deserializeCheckpoint(object.body) : undefined;
}

async function writeCheckpoint(store: ObjectStore, key: string, checkpoint: TrainingCheckpoint) {
  await store.put(key, serializeCheckpoint(checkpoint), { contentType: 'application/octet-stream' });
}

interface TrainHooks {
  onProgress?: (progress: TrainProgress) => void;
  /** After the epoch's checkpoint is stored. */
  afterCheckpoint?: (checkpoint: TrainingCheckpoint) => Promise<void>;
}

/** A fold's out-of-fold output, when an earlier invocation stored it. */
export async function storedFold(
  docs: JsonDocuments,
  jobId: string,
  task: Pick<FoldTask, 'seed' | 'fold'>,
): Promise<FoldOutput | null> {
  return (await docs.get<FoldOutput>(layout.jobFold(jobId, task.seed, task.fold)))?.value ?? null;
}

/**
 * Trains one fold, resuming from its epoch checkpoint; when it completes, stores its out-of-fold output
 * (jobs/<id>/folds/<seed>-<fold>.json) and drops the checkpoint.
 */
export async function trainFold(
  deps: { store: ObjectStore; docs: JsonDocuments },
  job: JobRecord,
  task: FoldTask,
  cells: Map<string, RecipeCell>,
  data: LoadedSnapshot,
  run: UnitRun,
  hooks: TrainHooks = {},
): ReturnType<typeof runFold> {
  const checkpointKey = layout.jobFoldCheckpoint(job.id, task.seed, task.fold);
  const fold = await runFold(task, cells, job.config, {
    domain: data.domain,
    resumeFrom: await readCheckpoint(deps.store, checkpointKey),
    onProgress: hooks.onProgress,
    onCheckpoint: async (checkpoint) => {
      run.epochDone();
      await writeCheckpoint(deps.store, checkpointKey, checkpoint);
      await hooks.afterCheckpoint?.(checkpoint);
    },
    shouldCancel: run.shouldCancel,
    shouldPause: run.shouldPause,
  });
  if (fold.status !== 'completed') return fold;
  await deps.docs.put(layout.jobFold(job.id, task.seed, task.fold), fold.output);
  await deps.store.delete(checkpointKey).catch(() => undefined);
  return fold;
}

/**
 * Trains the served network on the train split with early stopping on validation, resuming from and
 * checkpointing to jobs/<id>/checkpoint after every epoch. The caller disposes the model it returns.
 */
export async function trainServedNetwork(
  deps: { store: ObjectStore; log: Logger },
  job: JobRecord,
  data: LoadedSnapshot,
  run: UnitRun,
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const checkpointKey = layout.jobCheckpoint(job.id);
  const resumeFrom = await readCheckpoint(deps.store, checkpointKey);
  if (resumeFrom) deps.log.info('resuming from checkpoint', { epoch: resumeFrom.epoch });
  run.startEpoch();
  return train({
    config: job.config,
    train: data.train,
    validation: data.validation,
    resumeFrom,
    augment: augmenterFor(job.config),
    onTrainingFallback: (reason) => deps.log.warn('training falls back to TF.js', { reason }),
    onProgress: hooks.onProgress,
    onCheckpoint: async (checkpoint) => {
      run.epochDone();
      await writeCheckpoint(deps.store, checkpointKey, checkpoint);
      await hooks.afterCheckpoint?.(checkpoint);
    },
    shouldCancel: run.shouldCancel,
    shouldPause: run.shouldPause,
  });
}

export type WorkerFailure =
  | { kind: 'lease-lost'; owner: string | null }
  /** `message`: the error's own words when they are for users (bad data, a typed error), else null. */
  | { kind: 'failed'; message: string | null; retryable: boolean };

/**
 * What an error thrown while training means. Storage that is unavailable is transient: it is thrown on, so
 * that Lambda retries the event and the retry resumes from the last checkpoint.
 */
export function failureOf(error: unknown): WorkerFailure {
  if (error instanceof LeaseLost) return { kind: 'lease-lost', owner: error.owner };
  if (error instanceof LymphoscopeError && error.code === 'UNAVAILABLE') throw error;
  return {
    kind: 'failed',
    message: error instanceof JobCannotSucceed || error instanceof LymphoscopeError ? error.message : null,
    retryable: !(error instanceof JobCannotSucceed),
  };
}
