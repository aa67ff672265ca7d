import { LymphoscopeError } from '../errors';
import { runFold, type FoldOutput, type FoldRun, type FoldTask, type RecipeCell } from '../ml/decisions';
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
import type { JobRecord, TrainingUnit } from './training';

/**
 * What both training workers share (src/services/training-worker.ts runs a job whole, training-units.ts one
 * unit of it): the timings, the checks between batches and epochs, the checkpoints, the fold and the served
 * network as they are trained, and what a failure means.
 */

const LEASE_MS = 60_000;
const SAFETY_MS = 50_000;
/** job.json is read for a cancel (and progress written) at most this often. */
const CHECK_EVERY_MS = 3_000;

/** Every unit of a fanned-out job writes job.json; with many running, a swap may lose a few races in a row. */
export const UNITS_UPDATE_RETRIES = 60;

export const now = () => new Date().toISOString();

/** How a unit is named in the job's error and in logs. */
export function unitName(unit: Pick<TrainingUnit, 'kind' | 'seed' | 'fold'>): string {
  return unit.kind === 'FINAL' ? 'the served network' : `fold ${unit.fold} of seed ${unit.seed}`;
}

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

/** What a UnitRun needs: where it trains from and to, the job's lease and data, and when it must stop. */
export interface UnitRunOptions {
  store: ObjectStore;
  docs: JsonDocuments;
  log: Logger;
  lease: JobLease;
  data: LoadedSnapshot;
  remainingMs: () => number;
  safetyMs: number;
  /** Whether the job as stored now (null: gone) means this training should stop. */
  stopWhen: (job: JobRecord | null) => boolean;
}

interface TrainHooks {
  onProgress?: (progress: TrainProgress) => void;
  /** After the epoch's checkpoint is stored. */
  afterCheckpoint?: (checkpoint: TrainingCheckpoint) => Promise<void>;
}

/**
 * One invocation's training under its lease, for a fold or the served network: resuming from the
 * network's checkpoint and writing one after every epoch, the cancel check between batches, the time check
 * between epochs (with the epochs' timing it needs) and the throttled progress writes.
 */
export class UnitRun {
  readonly lease: JobLease;
  readonly data: LoadedSnapshot;
  readonly log: Logger;
  /** The last progress train() reported. */
  lastProgress: TrainProgress | null = null;
  private stopRequested = false;
  private readonly checkDue = every(CHECK_EVERY_MS);
  private readonly writeDue = every(CHECK_EVERY_MS);
  private epochStarted = Date.now();
  private longestEpochMs = 0;

  constructor(private readonly options: UnitRunOptions) {
    ({ lease: this.lease, data: this.data, log: this.log } = options);
  }

  /** Between batches: reads job.json (proving the lease) at most every 3 s; once true, stays true. */
  readonly shouldCancel = async (): Promise<boolean> => {
    if (this.stopRequested) return true;
    if (!this.checkDue()) return false;
    this.stopRequested = this.options.stopWhen(await this.lease.read());
    return this.stopRequested;
  };

  /** Between epochs: stop when another one (plus evaluation and writes) might not fit the time left. */
  readonly shouldPause = (): boolean =>
    this.options.remainingMs() < this.longestEpochMs * 1.5 + this.options.safetyMs;

  startEpoch(): void {
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

  /**
   * Trains one fold, resuming from its epoch checkpoint; when it completes, stores its out-of-fold output
   * (jobs/<id>/folds/<seed>-<fold>.json) and drops the checkpoint.
   */
  async trainFold(task: FoldTask, cells: Map<string, RecipeCell>, hooks: TrainHooks = {}): Promise<FoldRun> {
    const { docs, store } = this.options;
    const jobId = this.lease.job.id;
    const checkpointKey = layout.jobFoldCheckpoint(jobId, task.seed, task.fold);
    const fold = await runFold(task, cells, this.lease.job.config, {
      domain: this.data.domain,
      ...(await this.checkpointed(checkpointKey, hooks)),
    });
    if (fold.status !== 'completed') return fold;
    await docs.put(layout.jobFold(jobId, task.seed, task.fold), fold.output);
    await store.delete(checkpointKey).catch(() => undefined);
    return fold;
  }

  /**
   * Trains the served network on the train split with early stopping on validation, resuming from and
   * checkpointing to jobs/<id>/checkpoint after every epoch. The caller disposes the model it returns.
   */
  async trainServedNetwork(hooks: TrainHooks = {}): Promise<TrainResult> {
    const { config, id } = this.lease.job;
    const trainHooks = await this.checkpointed(layout.jobCheckpoint(id), hooks);
    if (trainHooks.resumeFrom)
      this.log.info('resuming from checkpoint', { epoch: trainHooks.resumeFrom.epoch });
    this.startEpoch();
    return train({
      config,
      train: this.data.train,
      validation: this.data.validation,
      augment: augmenterFor(config),
      onTrainingFallback: (reason) => this.log.warn('training falls back to TF.js', { reason }),
      ...trainHooks,
    });
  }

  /** train()'s hooks for a network checkpointed at `key`: where it resumes, what each epoch writes, the checks. */
  private async checkpointed(key: string, hooks: TrainHooks) {
    const { store } = this.options;
    const object = await store.get(key);
    return {
      resumeFrom: object ? deserializeCheckpoint(object.body) : undefined,
      onProgress: hooks.onProgress,
      onCheckpoint: async (checkpoint: TrainingCheckpoint) => {
        this.longestEpochMs = Math.max(this.longestEpochMs, Date.now() - this.epochStarted);
        this.epochStarted = Date.now();
        await store.put(key, serializeCheckpoint(checkpoint), { contentType: 'application/octet-stream' });
        await hooks.afterCheckpoint?.(checkpoint);
      },
      shouldCancel: this.shouldCancel,
      shouldPause: this.shouldPause,
    };
  }
}

/** A fold's out-of-fold output, when an earlier invocation stored it. */
export async function storedFold(
  docs: JsonDocuments,
  jobId: string,
  task: Pick<FoldTask, 'seed' | 'fold'>,
): Promise<FoldOutput | null> {
  return (await docs.get<FoldOutput>(layout.jobFold(jobId, task.seed, task.fold)))?.value ?? null;
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
