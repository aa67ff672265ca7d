import { ulid } from 'ulid';
import { badInput, conflict, ErrorCode, LymphoscopeError, notFound } from '../errors';
import type { ScoringDispatcher } from '../dispatch/scoring-dispatcher';
import type { ReviewReason } from '../ml/serving/decision';
import type { Logger } from '../observability/log';
import type { JsonDocuments } from '../storage/json-documents';
import { layout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import type { Caller } from './auth';
import type { DatasetService } from './datasets';
import type { CellLabel } from './labels';
import type { ModelRegistry } from './models';
import { FINAL_STATUSES, type JobStatus } from './training';

/** Where a job's images come from: a dataset's images, or a folder a lab dropped in the bucket. */
export interface ScoringSource {
  datasetId: string | null;
  prefix: string | null;
}

/** Counts over the whole job, written at assembly (summary.json holds the same). */
export interface ScoringCounts {
  images: number;
  scored: number;
  /** Images that could not be read or decoded (their row carries the error code). */
  failed: number;
  byLabel: Record<CellLabel, number>;
  needsReview: number;
  byReason: Record<ReviewReason, number>;
}

/**
 * One row of the results, one per image. Scored images are not predictions: nothing lands in the review
 * queue (see docs/API.md, "Bulk scoring"); the reasons are here instead.
 */
export interface ScoringRow {
  key: string;
  /** The dataset's image id when the job scored a dataset; null for a prefix. */
  imageId: string | null;
  label: CellLabel | null;
  probabilityAll: number | null;
  needsReview: boolean | null;
  reviewReasons: ReviewReason[];
  /** An error code (UNSUPPORTED_IMAGE, PAYLOAD_TOO_LARGE, NOT_FOUND) when the image could not be scored. */
  error: string | null;
}

export interface ScoringJobRecord {
  id: string;
  status: JobStatus;
  source: ScoringSource;
  modelVersion: string;
  chunkSize: number;
  /** At most this many chunks run at once. */
  concurrency: number;
  /** Known once the job is planned (the worker lists the images). */
  totalImages: number | null;
  chunkCount: number | null;
  /** Chunks [0, nextChunk) have been handed to a worker. */
  nextChunk: number;
  /** Finished chunk -> the chunk its worker started next: a retried worker re-sends the same one. */
  handoffs: Record<string, number>;
  completedChunks: number[];
  /** Rows in the completed chunks' results. */
  scoredImages: number;
  summary: ScoringCounts | null;
  error: string | null;
  cancelRequested: boolean;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** When a reader last re-sent the events of a job that had stopped moving. */
  resumeDispatchedAt?: string | null;
}

export interface StartScoringInput {
  datasetId?: string | null;
  prefix?: string | null;
  modelVersion?: string | null;
  chunkSize?: number | null;
  concurrency?: number | null;
}

export interface ScoringLimits {
  /** Most images one job may score (LYMPHOSCOPE_MAX_SCORING_IMAGES). */
  images: number;
  /** Most chunks of one job running at once (LYMPHOSCOPE_MAX_SCORING_CONCURRENCY). */
  concurrency: number;
}

export const SCORING_DEFAULTS = { chunkSize: 250, concurrency: 10, maxChunkSize: 1000 } as const;

/**
 * A job that has not moved for this long (no job update, no chunk checkpoint: a running chunk saves its
 * rows every second) has lost its workers, e.g. Lambda gave up after its retries: reading it re-sends its
 * events. Planning 200,000 keys takes well under a minute.
 */
export const SCORING_STALL_MS = 120_000;

/** Lymphoscope's own data: a prefix there would let a scientist read keys, predictions, audit records. */
const OWN_DATA = /^(datasets|models|jobs|keys|audit|predictions|reviews|uploads|prediction-owners|scoring)\//;

/** The key prefix a source names, checked: a dataset's images, or a lab folder outside our own data. */
export function sourcePrefix(source: ScoringSource): string {
  if (source.datasetId) return layout.imagesPrefix(source.datasetId);
  const prefix = (source.prefix ?? '').replace(/^\/+/, '').replace(/\/?$/, '/');
  if (
    prefix === '/' ||
    prefix.includes('..') ||
    prefix.length > 512 ||
    [...prefix].some((c) => c.charCodeAt(0) < 0x20)
  ) {
    throw badInput('prefix must name a folder in the bucket, e.g. "imports/lab-archive".', {
      field: 'prefix',
    });
  }
  if (OWN_DATA.test(prefix)) {
    throw badInput("prefix must not point inside Lymphoscope's own data; score a dataset by its datasetId.", {
      field: 'prefix',
    });
  }
  return prefix;
}

/**
 * Bulk scoring: every image of a dataset or a bucket folder through one model version, fanned out over
 * scoring worker invocations (src/services/scoring-worker.ts does the work). This service starts, reads
 * and cancels jobs; it knows no transport.
 */
export class ScoringService {
  constructor(
    private readonly store: ObjectStore,
    private readonly docs: JsonDocuments,
    private readonly datasets: DatasetService,
    private readonly models: ModelRegistry,
    private readonly dispatcher: ScoringDispatcher,
    private readonly limits: ScoringLimits,
    private readonly log: Logger,
  ) {}

  async start(caller: Caller, input: StartScoringInput): Promise<ScoringJobRecord> {
    const given = [input.datasetId, input.prefix].filter((v) => v != null && v !== '').length;
    if (given !== 1) throw badInput('Give exactly one of datasetId or prefix.');
    const chunkSize = input.chunkSize ?? SCORING_DEFAULTS.chunkSize;
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > SCORING_DEFAULTS.maxChunkSize) {
      throw badInput(`chunkSize must be 1-${SCORING_DEFAULTS.maxChunkSize}.`, { field: 'chunkSize' });
    }
    const concurrency = input.concurrency ?? Math.min(SCORING_DEFAULTS.concurrency, this.limits.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > this.limits.concurrency) {
      throw badInput(`concurrency must be 1-${this.limits.concurrency}.`, { field: 'concurrency' });
    }
    const source: ScoringSource = input.datasetId
      ? { datasetId: input.datasetId, prefix: null }
      : { datasetId: null, prefix: sourcePrefix({ datasetId: null, prefix: input.prefix! }) };
    if (source.datasetId) await this.datasets.require(source.datasetId);
    const prefix = sourcePrefix(source);
    // One key is enough to refuse an empty source now; the full listing is the worker's (it may be long).
    if ((await this.store.listPage(prefix, { maxKeys: 1 })).items.length === 0) {
      throw badInput(`No images under "${prefix}".`, { field: source.datasetId ? 'datasetId' : 'prefix' });
    }
    const modelVersion = input.modelVersion ?? (await this.models.productionVersion());
    if (!modelVersion) {
      throw new LymphoscopeError(ErrorCode.UNAVAILABLE, 'No production model is set: name a modelVersion.');
    }
    await this.models.require(modelVersion);

    const now = new Date().toISOString();
    const job: ScoringJobRecord = {
      id: `sc-${ulid().toLowerCase()}`,
      status: 'QUEUED',
      source,
      modelVersion,
      chunkSize,
      concurrency,
      totalImages: null,
      chunkCount: null,
      nextChunk: 0,
      handoffs: {},
      completedChunks: [],
      scoredImages: 0,
      summary: null,
      error: null,
      cancelRequested: false,
      createdBy: caller.keyId,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      finishedAt: null,
    };
    await this.docs.create(layout.scoringJob(job.id), job);
    try {
      await this.dispatcher.dispatch({ jobId: job.id });
    } catch (error) {
      // Nothing will ever run it: say so on the job instead of leaving it QUEUED for good.
      await this.docs.update<ScoringJobRecord>(layout.scoringJob(job.id), (j) => ({
        ...j,
        status: 'FAILED',
        error: 'The scoring worker could not be started.',
        finishedAt: new Date().toISOString(),
        updatedAt: new Date().toISOString(),
      }));
      throw error;
    }
    this.log.info('scoring started', {
      jobId: job.id,
      actor: caller.keyId,
      modelVersion,
      prefix,
      chunkSize,
      concurrency,
    });
    return job;
  }

  async get(jobId: string): Promise<ScoringJobRecord | null> {
    return (await this.docs.get<ScoringJobRecord>(layout.scoringJob(jobId)))?.value ?? null;
  }

  /**
   * The job, after re-sending the events of one that stopped moving (see SCORING_STALL_MS): the plan for a
   * QUEUED job, every started, unfinished chunk for a RUNNING one. Every step is idempotent, so a worker
   * that was only slow loses nothing; a compare-and-swap on the job lets one reader do it per period.
   */
  async getAndResumeIfStalled(jobId: string): Promise<ScoringJobRecord | null> {
    const found = await this.docs.get<ScoringJobRecord>(layout.scoringJob(jobId));
    if (!found) return null;
    const job = found.value;
    const longAgo = (at: string | Date | null | undefined) =>
      !at || new Date(at).getTime() < Date.now() - SCORING_STALL_MS;
    if (FINAL_STATUSES.has(job.status) || !longAgo(job.updatedAt) || !longAgo(job.resumeDispatchedAt)) {
      return job;
    }
    const chunks = job.chunkCount === null ? [] : this.unfinishedChunks(job);
    const partials = await Promise.all(
      chunks.map((chunk) => this.store.head(layout.scoringChunk(job.id, chunk, 'partial.jsonl'))),
    );
    if (partials.some((info) => info && !longAgo(info.lastModified))) return job;
    const marked = { ...job, resumeDispatchedAt: new Date().toISOString() };
    try {
      await this.docs.replace(layout.scoringJob(jobId), marked, found.etag);
    } catch (error) {
      if (error instanceof LymphoscopeError && error.code === ErrorCode.CONFLICT)
        return (await this.get(jobId)) ?? job;
      throw error;
    }
    // Every chunk done but no results: the assembler died. Re-running a done chunk assembles again.
    const events =
      job.chunkCount === null
        ? [{ jobId }]
        : chunks.length > 0
          ? chunks.map((chunk) => ({ jobId, chunk }))
          : [{ jobId, chunk: 0 }];
    this.log.warn('resuming stalled scoring job', { jobId, status: job.status, chunks });
    for (const event of events) {
      await this.dispatcher
        .dispatch(event)
        .catch((error) => this.log.error('scoring resume dispatch failed', { jobId, error }));
    }
    return marked;
  }

  /** Chunks handed to a worker and not completed. */
  private unfinishedChunks(job: ScoringJobRecord): number[] {
    const done = new Set(job.completedChunks);
    const chunks: number[] = [];
    for (let chunk = 0; chunk < job.nextChunk; chunk++) if (!done.has(chunk)) chunks.push(chunk);
    return chunks;
  }

  async require(jobId: string): Promise<ScoringJobRecord> {
    const job = await this.get(jobId);
    if (!job) throw notFound('Scoring job', jobId);
    return job;
  }

  /**
   * Images scored so far: the completed chunks' rows, plus the rows each running chunk has checkpointed
   * (one HEAD per running chunk, at most `concurrency` of them: the count is in the object's metadata).
   */
  async scoredSoFar(job: ScoringJobRecord): Promise<number> {
    if (job.status !== 'RUNNING' || job.chunkCount === null) return job.scoredImages;
    const partials = await Promise.all(
      this.unfinishedChunks(job).map((chunk) =>
        this.store.head(layout.scoringChunk(job.id, chunk, 'partial.jsonl')),
      ),
    );
    return job.scoredImages + partials.reduce((sum, info) => sum + Number(info?.metadata.rows ?? 0), 0);
  }

  /** Running chunks stop at their next check (about a second); nothing more is started or assembled. */
  async cancel(caller: Caller, jobId: string): Promise<ScoringJobRecord> {
    const { value } = await this.docs.update<ScoringJobRecord>(layout.scoringJob(jobId), (job) => {
      if (FINAL_STATUSES.has(job.status))
        throw conflict(`Scoring job ${jobId} already ended (${job.status}).`);
      const now = new Date().toISOString();
      return { ...job, status: 'CANCELLED', cancelRequested: true, finishedAt: now, updatedAt: now };
    });
    this.log.info('scoring cancelled', { jobId, actor: caller.keyId });
    return value;
  }

  /** Presigned GETs of the results, once assembled; null before. */
  async resultUrls(
    job: ScoringJobRecord,
    ttlSeconds: number,
  ): Promise<{ jsonLinesUrl: string; csvUrl: string; summaryUrl: string; expiresAt: string } | null> {
    if (job.status !== 'SUCCEEDED') return null;
    const url = (file: 'results.jsonl' | 'results.csv' | 'summary.json') =>
      this.store.presignGet(layout.scoringResults(job.id, file), {
        expiresInSeconds: ttlSeconds,
        contentDisposition: `attachment; filename="${job.id}-${file}"`,
      });
    const [jsonLinesUrl, csvUrl, summaryUrl] = await Promise.all([
      url('results.jsonl'),
      url('results.csv'),
      url('summary.json'),
    ]);
    return {
      jsonLinesUrl,
      csvUrl,
      summaryUrl,
      expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
    };
  }
}
