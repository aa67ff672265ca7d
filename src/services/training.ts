import { createHash } from 'node:crypto';
import { ulid } from 'ulid';
import { badInput, conflict, LymphoscopeError, notFound } from '../errors';
import type { JobDispatcher } from '../dispatch/job-dispatcher';
import {
  ARCHITECTURES,
  type Architecture,
  MAX_INPUT_SIZE,
  MIN_INPUT_SIZE,
} from '../ml/models/architecture-names';
import { splitBySubject, type Split } from '../ml/data/splits';
import type { EpochRecord } from '../ml/training/train';
import { MAX_BATCH_SIZE, type TrainingConfig } from '../ml/training/training-config';
import type { JsonDocuments } from '../storage/json-documents';
import { layout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import type { Logger } from '../observability/log';
import type { Caller } from './auth';
import type { DatasetService } from './datasets';
import { labelToClass } from './labels';
import { pageOf, type Page } from './pagination';

export type JobStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
export const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

export type JobConfig = TrainingConfig & { validationFraction: number; testFraction: number };

export interface SplitSizes {
  train: number;
  validation: number;
  test: number;
  trainSubjects: number;
  validationSubjects: number;
  testSubjects: number;
}

export interface SnapshotItem {
  key: string;
  imageId: string;
  label: 0 | 1;
  subjectId: string | null;
  split: 'train' | 'validation' | 'test';
}

/** The frozen list one job trains on: later changes to the dataset do not move it. */
export interface Snapshot {
  snapshotId: string;
  datasetId: string;
  createdAt: string;
  items: SnapshotItem[];
}

export interface JobRecord {
  id: string;
  status: JobStatus;
  datasetId: string;
  snapshotId: string;
  config: JobConfig;
  epoch: number;
  progress: number;
  etaSeconds: number | null;
  imagesPerSecond: number | null;
  history: EpochRecord[];
  split: SplitSizes;
  modelVersion: string | null;
  error: string | null;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  cancelRequested: boolean;
  createdBy: string;
  /** The worker invocation that may run this job now, until expiresAt. */
  lease: { owner: string; expiresAt: string } | null;
  /** When a reader last started a new worker for this job because its worker had vanished. */
  resumeDispatchedAt?: string | null;
  /** Such restarts in a row without a new checkpoint, and the epoch they started from. */
  stalledResumes?: number;
  stalledAtEpoch?: number;
  /**
   * Set when the job fans out (LYMPHOSCOPE_FOLD_CONCURRENCY > 0): its cross-validation folds and the
   * served network, each run by its own worker invocation (src/services/training-units.ts). Absent when
   * one worker runs the whole job.
   */
  units?: TrainingUnit[];
  /** Units running at once, fixed when the job fans out. */
  unitConcurrency?: number;
}

export type UnitState = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

/** One unit of a fanned-out job: a cross-validation fold of one seed, or the served network. */
export interface TrainingUnit {
  kind: 'FOLD' | 'FINAL';
  /** The fold's seed and 0-based index; null for the served network. */
  seed: number | null;
  fold: number | null;
  state: UnitState;
  /** Epochs this unit has checkpointed, of at most `epochs` (early stopping may end it sooner). */
  epoch: number;
  epochs: number;
  /** Invocations that took the unit up; a failure is retried up to MAX_UNIT_ATTEMPTS. */
  attempts: number;
  error: string | null;
  /** Handed to a worker (events for the first `unitConcurrency` units are sent at once, the rest later). */
  dispatched: boolean;
  /** The unit this one's worker started when it finished, so a retry re-sends the same one. */
  handoff?: number | null;
  lease: { owner: string; expiresAt: string } | null;
}

/** A job whose worker vanished this many times in a row without checkpointing an epoch ends FAILED. */
export const MAX_RESUMES_WITHOUT_PROGRESS = 3;

export interface StartTrainingInput {
  datasetId: string;
  architecture?: Architecture | null;
  inputSize?: number | null;
  epochs?: number | null;
  batchSize?: number | null;
  learningRate?: number | null;
  patience?: number | null;
  classBalance?: TrainingConfig['classBalance'] | null;
  augment?: boolean | null;
  colourJitter?: number | null;
  testTimeAugmentation?: boolean | null;
  fusion?: TrainingConfig['fusion'] | null;
  seed?: number | null;
  validationFraction?: number | null;
  testFraction?: number | null;
  clientToken?: string | null;
}

/** Applies defaults and checks every bound; a bad value names its field and its range. */
export function resolveJobConfig(
  input: StartTrainingInput,
  defaults: TrainingConfig,
  maxEpochs: number,
): JobConfig {
  const pick = <T>(value: T | null | undefined, fallback: T) => (value == null ? fallback : value);
  const config: JobConfig = {
    // The recipe's levers the API does not expose (batch-norm recomputation) come from the defaults.
    ...defaults,
    architecture: pick(input.architecture, defaults.architecture),
    inputSize: pick(input.inputSize, defaults.inputSize),
    epochs: pick(input.epochs, defaults.epochs),
    batchSize: pick(input.batchSize, defaults.batchSize),
    learningRate: pick(input.learningRate, defaults.learningRate),
    patience: pick(input.patience, defaults.patience),
    classBalance: pick(input.classBalance, defaults.classBalance),
    augment: pick(input.augment, defaults.augment),
    colourJitter: pick(input.colourJitter, defaults.colourJitter),
    testTimeAugmentation: pick(input.testTimeAugmentation, defaults.testTimeAugmentation),
    fusion: pick(input.fusion, defaults.fusion),
    seed: pick(input.seed, defaults.seed),
    validationFraction: pick(input.validationFraction, 0.2),
    testFraction: pick(input.testFraction, 0.2),
  };
  const intIn = (field: keyof JobConfig, lo: number, hi: number) => {
    const v = config[field] as number;
    if (!Number.isInteger(v) || v < lo || v > hi)
      throw badInput(`${String(field)} must be an integer from ${lo} to ${hi}.`, { field });
  };
  const numIn = (field: keyof JobConfig, lo: number, hi: number) => {
    const v = config[field] as number;
    if (!Number.isFinite(v) || v < lo || v > hi)
      throw badInput(`${String(field)} must be a number from ${lo} to ${hi}.`, { field });
  };
  if (!ARCHITECTURES.includes(config.architecture))
    throw badInput(`Unknown architecture ${config.architecture}.`);
  intIn('inputSize', MIN_INPUT_SIZE, MAX_INPUT_SIZE);
  intIn('epochs', 1, maxEpochs);
  intIn('batchSize', 1, MAX_BATCH_SIZE);
  numIn('learningRate', 1e-6, 1);
  numIn('colourJitter', 0, 1);
  intIn('patience', 1, 1000);
  intIn('seed', 0, 2 ** 31 - 1);
  numIn('validationFraction', 0.05, 0.5);
  numIn('testFraction', 0.05, 0.5);
  if (config.validationFraction + config.testFraction > 0.8) {
    throw badInput('validationFraction + testFraction must leave at least 20% of the subjects for training.');
  }
  return config;
}

/** A dataset image as startTraining splits it. */
interface SplitCandidate {
  id: string;
  key: string;
  imageId: string;
  label: 0 | 1;
  subjectId: string | null;
}

/** The idempotency marker of a caller's clientToken; null without one. Refuses a token out of bounds. */
function clientTokenKey(caller: Caller, clientToken: string | null | undefined): string | null {
  if (clientToken == null) return null;
  if (clientToken.length < 1 || clientToken.length > 200) {
    throw badInput('clientToken must be 1-200 characters.', { field: 'clientToken' });
  }
  return layout.jobByToken(createHash('sha256').update(`${caller.keyId}\n${clientToken}`).digest('hex'));
}

/** The frozen list and split of one job; its id is the job's. */
function snapshotOf(jobId: string, datasetId: string, split: Split<SplitCandidate>): Snapshot {
  const tag = (list: SplitCandidate[], name: SnapshotItem['split']): SnapshotItem[] =>
    list.map((i) => ({
      key: i.key,
      imageId: i.imageId,
      label: i.label,
      subjectId: i.subjectId,
      split: name,
    }));
  return {
    snapshotId: jobId,
    datasetId,
    createdAt: new Date().toISOString(),
    items: [...tag(split.train, 'train'), ...tag(split.validation, 'validation'), ...tag(split.test, 'test')],
  };
}

/** The job record as startTraining first writes it. */
function queuedJob(
  jobId: string,
  caller: Caller,
  datasetId: string,
  config: JobConfig,
  split: Split<SplitCandidate>,
): JobRecord {
  const subjects = (list: SplitCandidate[]) => new Set(list.map((i) => i.subjectId ?? i.key)).size;
  const now = new Date().toISOString();
  return {
    id: jobId,
    status: 'QUEUED',
    datasetId,
    snapshotId: jobId,
    config,
    epoch: 0,
    progress: 0,
    etaSeconds: null,
    imagesPerSecond: null,
    history: [],
    split: {
      train: split.train.length,
      validation: split.validation.length,
      test: split.test.length,
      trainSubjects: subjects(split.train),
      validationSubjects: subjects(split.validation),
      testSubjects: subjects(split.test),
    },
    modelVersion: null,
    error: null,
    attempts: 0,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
    cancelRequested: false,
    createdBy: caller.keyId,
    lease: null,
  };
}

export class TrainingService {
  constructor(
    private readonly store: ObjectStore,
    private readonly docs: JsonDocuments,
    private readonly datasets: DatasetService,
    private readonly dispatcher: JobDispatcher,
    private readonly defaults: TrainingConfig,
    private readonly limits: { epochs: number },
    private readonly log: Logger,
    private readonly options: { leaseMs?: number } = {},
  ) {}

  /**
   * Freezes the snapshot and split, writes the job as QUEUED and hands it to a worker. With a
   * clientToken, a token already claimed returns its job; otherwise the token's marker is claimed
   * (If-None-Match) after validation and before anything else is written, so of two concurrent requests
   * one trains and the other gets its job, and a refused request leaves nothing behind.
   */
  async start(caller: Caller, input: StartTrainingInput): Promise<JobRecord> {
    // Validation: everything that can refuse the request, before anything is written.
    const config = resolveJobConfig(input, this.defaults, this.limits.epochs);
    await this.datasets.require(input.datasetId);
    const jobId = `job-${ulid().toLowerCase()}`;
    const tokenKey = clientTokenKey(caller, input.clientToken);
    if (tokenKey) {
      const claimed = await this.docs.get<{ jobId: string }>(tokenKey);
      if (claimed) return this.waitForJobDocument(claimed.value.jobId);
    }
    const split = await this.splitDataset(input.datasetId, config);

    // The token is claimed only once the request is known to be valid: a refused request leaves nothing
    // behind, so a retry with the same token (after adding images, say) is not stuck on a job that never was.
    if (tokenKey) {
      const winner = await this.claimToken(tokenKey, jobId);
      if (winner !== jobId) return this.waitForJobDocument(winner);
    }
    // Until the job document exists a claimed token points at nothing; a failed write gives it back.
    const releaseToken = async (error: unknown): Promise<never> => {
      if (tokenKey) await this.store.delete(tokenKey).catch(() => undefined);
      throw error;
    };

    // The dataset snapshot, then the job record, then the dispatch.
    const snapshot = snapshotOf(jobId, input.datasetId, split);
    await this.docs
      .create(layout.snapshot(input.datasetId, snapshot.snapshotId), snapshot)
      .catch(releaseToken);
    const job = queuedJob(jobId, caller, input.datasetId, config, split);
    await this.docs.create(layout.job(jobId), job).catch(releaseToken);
    await this.dispatchOrFail(jobId);
    this.log.info('training queued', {
      jobId,
      datasetId: input.datasetId,
      images: split.train.length + split.validation.length + split.test.length,
      architecture: config.architecture,
    });
    return job;
  }

  /** The dataset's images split by subject as `config` asks; refuses a dataset too small to train on. */
  private async splitDataset(datasetId: string, config: JobConfig): Promise<Split<SplitCandidate>> {
    const refs = await this.datasets.imageRefs(datasetId);
    const items: SplitCandidate[] = refs.map((r) => ({
      id: r.key,
      key: r.key,
      imageId: r.imageId,
      label: labelToClass(r.label),
      subjectId: r.subjectId,
    }));
    const positives = items.filter((i) => i.label === 1).length;
    if (items.length < 10 || positives === 0 || positives === items.length) {
      throw badInput(
        `Dataset ${datasetId} has ${items.length} images (${positives} ALL); training needs at least 10 with both labels.`,
      );
    }
    const split = splitBySubject(items, {
      validationFraction: config.validationFraction,
      testFraction: config.testFraction,
      seed: config.seed,
    });
    if (split.train.length === 0 || split.validation.length === 0 || split.test.length === 0) {
      throw badInput(
        'The dataset has too few subjects to hold out validation and test subjects; add more subjects.',
      );
    }
    return split;
  }

  /** Claims the token for `jobId` (create-once); returns the job id that holds it, this one or another's. */
  private async claimToken(tokenKey: string, jobId: string): Promise<string> {
    try {
      await this.docs.create(tokenKey, { jobId });
      return jobId;
    } catch (error) {
      if (!(error instanceof LymphoscopeError) || error.code !== 'CONFLICT') throw error;
      return (await this.docs.get<{ jobId: string }>(tokenKey))!.value.jobId;
    }
  }

  /** Hands the job to a worker; a job no worker will ever see is marked FAILED, and the error rethrown. */
  private async dispatchOrFail(jobId: string): Promise<void> {
    try {
      await this.dispatcher.dispatch({ jobId });
    } catch (error) {
      await this.docs.update<JobRecord>(layout.job(jobId), (j) => ({
        ...j,
        status: 'FAILED',
        error: (error as Error).message,
        finishedAt: new Date().toISOString(),
        updatedAt: new Date().toISOString(),
      }));
      throw error;
    }
  }

  /** A concurrent request with the same token may not have written its job yet: wait briefly. */
  private async waitForJobDocument(jobId: string): Promise<JobRecord> {
    for (let i = 0; i < 50; i++) {
      const job = await this.get(jobId);
      if (job) return job;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw conflict('A request with this clientToken is still starting; retry in a moment.');
  }

  async get(jobId: string): Promise<JobRecord | null> {
    return (await this.docs.get<JobRecord>(layout.job(jobId)))?.value ?? null;
  }

  async require(jobId: string): Promise<JobRecord> {
    const job = await this.get(jobId);
    if (!job) throw notFound('Training job', jobId);
    return job;
  }

  /**
   * Reading a job also heals it: a RUNNING job whose worker lease lapsed long ago (its retries were
   * exhausted, or the process vanished) gets a new worker, which resumes from the last checkpoint. One
   * reader wins a compare-and-swap on resumeDispatchedAt, so clients polling a stalled job start one
   * worker, not one per poll; if that one has not taken the lease a whole lease later (it never started),
   * the next read tries again.
   */
  async getAndResumeIfStalled(jobId: string): Promise<JobRecord | null> {
    const found = await this.docs.get<JobRecord>(layout.job(jobId));
    if (!found) return null;
    const job = found.value;
    const leaseMs = this.options.leaseMs ?? 60_000;
    const longAgo = (iso: string | null | undefined, ms: number) => !iso || Date.parse(iso) < Date.now() - ms;
    // A fanned-out job has no job lease: its units renew theirs in job.json every third of a lease, so
    // a job.json unchanged for a whole lease has no live unit (the start event re-sends the lost ones).
    const abandoned = job.units
      ? longAgo(job.updatedAt, leaseMs)
      : job.lease !== null && longAgo(job.lease.expiresAt, leaseMs / 2);
    if (job.status !== 'RUNNING' || !abandoned || !longAgo(job.resumeDispatchedAt, leaseMs)) {
      return job;
    }
    // A worker that cannot resume (it dies, or never starts, every time) would otherwise leave the job
    // RUNNING for good: after a few restarts with no new epoch, the job ends FAILED and says why.
    const mark = job.units
      ? job.units.reduce((sum, u) => sum + u.epoch + (u.state === 'SUCCEEDED' ? 1 : 0), 0)
      : job.epoch;
    const stalledResumes = mark > (job.stalledAtEpoch ?? -1) ? 1 : (job.stalledResumes ?? 0) + 1;
    const now = new Date().toISOString();
    const marked: JobRecord =
      stalledResumes > MAX_RESUMES_WITHOUT_PROGRESS
        ? {
            ...job,
            status: 'FAILED',
            error: `The training worker stopped ${MAX_RESUMES_WITHOUT_PROGRESS} times in a row without finishing an epoch and could not resume; start a new job.`,
            lease: null,
            finishedAt: now,
            updatedAt: now,
          }
        : { ...job, resumeDispatchedAt: now, stalledResumes, stalledAtEpoch: mark };
    try {
      await this.docs.replace(layout.job(jobId), marked, found.etag);
    } catch (error) {
      if (error instanceof LymphoscopeError && error.code === 'CONFLICT')
        return (await this.get(jobId)) ?? job;
      throw error;
    }
    if (marked.status === 'FAILED') {
      this.log.warn('training job failed: its worker cannot resume', { jobId, epoch: job.epoch });
      return marked;
    }
    this.log.warn('resuming stalled training job', { jobId, leaseOwner: job.lease?.owner, stalledResumes });
    await this.dispatcher
      .dispatch({ jobId })
      .catch((error) => this.log.error('resume dispatch failed', { jobId, error }));
    return marked;
  }

  /** Newest first. */
  async list(status: JobStatus | null | undefined, first: number, after?: string): Promise<Page<JobRecord>> {
    const objects = await this.store.listAll(layout.jobsPrefix(), { limit: 100_000 });
    const ids = objects
      .filter((o) => /^jobs\/job-[^/]+\/job\.json$/.test(o.key))
      .map((o) => o.key.split('/')[1])
      .sort()
      .reverse();
    if (!status) {
      const page = pageOf(ids, (id) => id, first, after);
      const jobs = await Promise.all(page.items.map((i) => this.require(i.node)));
      return { ...page, items: page.items.map((i, n) => ({ cursor: i.cursor, node: jobs[n] })) };
    }
    const jobs = (await Promise.all(ids.map((id) => this.get(id)))).filter(
      (j): j is JobRecord => j?.status === status,
    );
    return pageOf(jobs, (j) => j.id, first, after);
  }

  /** QUEUED jobs stop at once; RUNNING ones at the worker's next batch boundary. */
  async cancel(caller: Caller, jobId: string): Promise<JobRecord> {
    const { value } = await this.docs.update<JobRecord>(layout.job(jobId), (job) => {
      if (FINAL_STATUSES.has(job.status)) throw conflict(`Job ${jobId} already ended (${job.status}).`);
      const now = new Date().toISOString();
      if (job.status === 'QUEUED' && !job.lease)
        return { ...job, status: 'CANCELLED', cancelRequested: true, finishedAt: now, updatedAt: now };
      return { ...job, cancelRequested: true, updatedAt: now };
    });
    this.log.info('training cancel requested', { jobId, actor: caller.keyId, status: value.status });
    return value;
  }
}
