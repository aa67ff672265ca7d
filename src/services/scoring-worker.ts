import { badInput, LymphoscopeError } from '../errors';
import type { ScoringDispatcher } from '../dispatch/scoring-dispatcher';
import { REVIEW_REASONS } from '../ml/serving/decision';
import { decodeImage } from '../ml/image/decode';
import { analyzeCell } from '../ml/serving/predictor';
import type { Logger } from '../observability/log';
import type { JsonDocuments } from '../storage/json-documents';
import { layout, parseImageKey } from '../storage/layout';
import { PreconditionFailed, type ObjectStore } from '../storage/object-store';
import { imageLimits } from './image-limits';
import { classToLabel } from './labels';
import type { ModelRegistry } from './models';
import {
  SCORING_STALL_MS,
  sourcePrefix,
  type ScoringJobRecord,
  type ScoringRow,
  type ScoringCounts,
} from './scoring';
import { FINAL_STATUSES } from './training';

export interface ScoringWorkerDeps {
  store: ObjectStore;
  docs: JsonDocuments;
  models: ModelRegistry;
  dispatcher: ScoringDispatcher;
  log: Logger;
  limits: { uploadBytes: number; imageSide: number; scoringImages: number };
  /** Time kept back before a chunk hands itself to a fresh invocation (LYMPHOSCOPE_WORKER_SAFETY_MS). */
  safetyMs: number;
}

export interface ScoringInvocation {
  jobId: string;
  /** Absent: plan the job. */
  chunk?: number;
  /** Lambda's request id, which its async retries keep: a retried assembler knows its own claim. */
  invocationId: string;
  remainingMs: () => number;
}

export type ScoringOutcome = 'planned' | 'scored' | 'assembled' | 'handed-off' | 'stopped';

/**
 * Partial results are saved every second, or every 5% of the chunk (at least 10 rows) if that comes
 * first, so a killed worker loses little work; each save rewrites the chunk's rows so far (a 1,000-row
 * chunk uploads about 2 MB of checkpoints in all).
 */
const CHECKPOINT_MS = 1000;
const checkpointRows = (chunkSize: number) => Math.max(10, Math.ceil(chunkSize / 20));
/** A running chunk reads the job this often to see a cancellation. */
const CANCEL_CHECK_MS = 1000;
const IMAGE_FILE = /\.(bmp|png|jpe?g|tiff?)$/i;

/**
 * One scoring worker invocation. Every step is idempotent, because Lambda delivers async events at least
 * once and retries a crashed worker with the same event:
 *  - plan: list the images, write one manifest per chunk, then (compare-and-swap on the job) fix the chunk
 *    count and start the first `concurrency` chunks;
 *  - chunk: score the manifest's images, checkpointing rows to partial.jsonl; a re-run skips the rows
 *    already there. The chunk's result.jsonl is created once (If-None-Match): a duplicate worker on the
 *    same chunk loses that write and its rows are dropped, so each image appears once;
 *  - completion: mark the chunk done and claim the next unstarted chunk, in one compare-and-swap, then
 *    score it in the same invocation (or start a new one when time runs short); the claim is remembered
 *    per chunk, so a retry goes on with the same one;
 *  - assembly: the worker that completes the last chunk creates assembly.json once and concatenates the
 *    chunk results into results.jsonl, results.csv and summary.json.
 * It throws only for transient failures (storage, model load), so that Lambda's retry takes over.
 */
export async function runScoringInvocation(
  deps: ScoringWorkerDeps,
  invocation: ScoringInvocation,
): Promise<ScoringOutcome> {
  const { jobId, chunk } = invocation;
  const job = await readJob(deps, jobId);
  if (!job || FINAL_STATUSES.has(job.status)) return 'stopped';
  if (chunk === undefined) return plan(deps, job, invocation);
  if (job.status !== 'RUNNING' || job.chunkCount === null) return 'stopped';
  if (!Number.isInteger(chunk) || chunk < 0 || chunk >= job.chunkCount) {
    throw badInput(`chunk must be 0-${job.chunkCount - 1}.`, { field: 'chunk' });
  }
  // A worker that finishes its chunk goes on with the chunk it claimed, in the same invocation while time
  // is left: no new process, no cold start. A retry of this event re-runs the same chain from its start,
  // skipping the chunks whose result exists.
  for (let current = chunk; ;) {
    const scored = await scoreChunk(deps, job, current, invocation);
    if (scored === 'stopped' || scored === 'handed-off') return scored;
    const { outcome, next } = await complete(deps, job, current, scored, invocation);
    if (next === null) return outcome;
    if (invocation.remainingMs() < 2 * deps.safetyMs) {
      await deps.dispatcher.dispatch({ jobId: job.id, chunk: next });
      return outcome;
    }
    current = next;
  }
}

async function readJob(deps: ScoringWorkerDeps, jobId: string): Promise<ScoringJobRecord | null> {
  return (await deps.docs.get<ScoringJobRecord>(layout.scoringJob(jobId)))?.value ?? null;
}

async function plan(
  deps: ScoringWorkerDeps,
  job: ScoringJobRecord,
  invocation: ScoringInvocation,
): Promise<ScoringOutcome> {
  const jobKey = layout.scoringJob(job.id);
  let planned = job;
  if (job.chunkCount === null) {
    const objects = await deps.store.listAll(sourcePrefix(job.source), {
      limit: deps.limits.scoringImages + 1,
    });
    const keys = objects
      .map((o) => o.key)
      .filter((key) => (job.source.datasetId ? parseImageKey(key) !== null : IMAGE_FILE.test(key)));
    if (keys.length > deps.limits.scoringImages || keys.length === 0) {
      const error =
        keys.length === 0
          ? 'No image files (.bmp, .png, .jpg, .tif) were found.'
          : `More than ${deps.limits.scoringImages} images: score the folder in parts.`;
      await deps.docs.update<ScoringJobRecord>(jobKey, (j) =>
        FINAL_STATUSES.has(j.status) ? j : { ...j, status: 'FAILED', error, ...ended() },
      );
      deps.log.warn('scoring refused', { jobId: job.id, images: keys.length, error });
      return 'stopped';
    }
    const chunks: string[][] = [];
    for (let i = 0; i < keys.length; i += job.chunkSize) chunks.push(keys.slice(i, i + job.chunkSize));
    // No chunk runs before the count is fixed below, so a retry that lists again may overwrite these.
    await mapLimit(chunks, 16, (chunkKeys, index) =>
      deps.docs.put(layout.scoringChunk(job.id, index, 'manifest.json'), { keys: chunkKeys }),
    );
    planned = (
      await deps.docs.update<ScoringJobRecord>(jobKey, (j) => {
        if (j.chunkCount !== null || FINAL_STATUSES.has(j.status)) return j;
        const now = new Date().toISOString();
        return {
          ...j,
          status: 'RUNNING',
          totalImages: keys.length,
          chunkCount: chunks.length,
          nextChunk: Math.min(j.concurrency, chunks.length),
          startedAt: now,
          updatedAt: now,
        };
      })
    ).value;
    deps.log.info('scoring planned', {
      jobId: job.id,
      images: planned.totalImages,
      chunks: planned.chunkCount,
      invocationId: invocation.invocationId,
    });
  }
  if (planned.status !== 'RUNNING') return 'stopped';
  const first = Math.min(planned.concurrency, planned.chunkCount!);
  for (let chunk = 0; chunk < first; chunk++) await deps.dispatcher.dispatch({ jobId: job.id, chunk });
  return 'planned';
}

async function scoreChunk(
  deps: ScoringWorkerDeps,
  job: ScoringJobRecord,
  chunk: number,
  invocation: ScoringInvocation,
): Promise<number | 'stopped' | 'handed-off'> {
  const resultKey = layout.scoringChunk(job.id, chunk, 'result.jsonl');
  const existing = await deps.store.head(resultKey);
  if (existing) return Number(existing.metadata.rows ?? 0);

  const manifest = await deps.docs.get<{ keys: string[] }>(
    layout.scoringChunk(job.id, chunk, 'manifest.json'),
  );
  if (!manifest) throw new Error(`Scoring job ${job.id} has no manifest for chunk ${chunk}`);
  const partialKey = layout.scoringChunk(job.id, chunk, 'partial.jsonl');
  const rows = parseRows((await deps.store.get(partialKey))?.body.toString('utf8') ?? '');
  const resumedFrom = rows.length;
  const done = new Set(rows.map((r) => r.key));
  const saveRows = () =>
    deps.store.put(partialKey, toJsonLines(rows), {
      contentType: 'application/x-ndjson',
      metadata: { rows: String(rows.length) },
    });

  const { network, card, onnx } = await deps.models.load(job.modelVersion);
  const started = performance.now();
  let lastSave = Date.now();
  let savedRows = rows.length;
  let lastCancelCheck = Date.now();
  for (const key of manifest.value.keys) {
    if (done.has(key)) continue;
    if (Date.now() - lastCancelCheck >= CANCEL_CHECK_MS) {
      lastCancelCheck = Date.now();
      if ((await readJob(deps, job.id))?.status !== 'RUNNING') {
        await saveRows();
        deps.log.info('scoring chunk stopped', { jobId: job.id, chunk, rows: rows.length });
        return 'stopped';
      }
    }
    if (invocation.remainingMs() < deps.safetyMs) {
      await saveRows();
      await deps.dispatcher.dispatch({ jobId: job.id, chunk });
      deps.log.info('scoring chunk handed off', { jobId: job.id, chunk, rows: rows.length });
      return 'handed-off';
    }
    rows.push(await scoreImage(deps, job, key, network, card, onnx));
    done.add(key);
    if (Date.now() - lastSave >= CHECKPOINT_MS || rows.length - savedRows >= checkpointRows(job.chunkSize)) {
      await saveRows();
      lastSave = Date.now();
      savedRows = rows.length;
    }
  }
  try {
    await deps.store.put(resultKey, toJsonLines(rows), {
      contentType: 'application/x-ndjson',
      metadata: { rows: String(rows.length), 'resumed-from': String(resumedFrom) },
      ifNoneMatch: '*',
    });
  } catch (error) {
    // Another worker on the same chunk (a duplicated event) wrote it first: its rows stand.
    if (!(error instanceof PreconditionFailed)) throw error;
  }
  const seconds = (performance.now() - started) / 1000;
  deps.log.info('scoring chunk done', {
    jobId: job.id,
    chunk,
    rows: rows.length,
    resumedFrom,
    seconds: Number(seconds.toFixed(2)),
    imagesPerSecond: Number(((rows.length - resumedFrom) / Math.max(seconds, 1e-3)).toFixed(2)),
  });
  return Number((await deps.store.head(resultKey))?.metadata.rows ?? rows.length);
}

/** The same analysis PredictionService.predict makes, so labels and reasons match the API's. */
async function scoreImage(
  deps: ScoringWorkerDeps,
  job: ScoringJobRecord,
  key: string,
  network: Parameters<typeof analyzeCell>[0],
  card: Parameters<typeof analyzeCell>[1],
  onnx: Parameters<typeof analyzeCell>[3]['onnx'],
): Promise<ScoringRow> {
  const imageId = job.source.datasetId ? (parseImageKey(key)?.imageId ?? null) : null;
  const failed = (error: string): ScoringRow => ({
    key,
    imageId,
    label: null,
    probabilityAll: null,
    needsReview: null,
    reviewReasons: [],
    error,
  });
  const object = await deps.store.get(key);
  if (!object) return failed('NOT_FOUND');
  try {
    const image = await decodeImage(object.body, imageLimits(deps.limits, deps.limits.uploadBytes));
    const analysis = await analyzeCell(network, card, image, { explain: false, onnx });
    return {
      key,
      imageId,
      label: classToLabel(analysis.isAll ? 1 : 0),
      probabilityAll: analysis.probabilityAll,
      needsReview: analysis.reviewReasons.length > 0,
      reviewReasons: analysis.reviewReasons,
      error: null,
    };
  } catch (error) {
    // A bad file is a row, not a failed chunk; anything else is ours and worth a retry.
    if (error instanceof LymphoscopeError) return failed(error.code);
    throw error;
  }
}

async function complete(
  deps: ScoringWorkerDeps,
  job: ScoringJobRecord,
  chunk: number,
  rows: number,
  invocation: ScoringInvocation,
): Promise<{ outcome: ScoringOutcome; next: number | null }> {
  const { value } = await deps.docs.update<ScoringJobRecord>(layout.scoringJob(job.id), (j) => {
    const next = { ...j, handoffs: { ...j.handoffs }, completedChunks: [...j.completedChunks] };
    if (!next.completedChunks.includes(chunk)) {
      next.completedChunks.push(chunk);
      next.scoredImages += rows;
    }
    if (
      next.handoffs[chunk] === undefined &&
      next.status === 'RUNNING' &&
      next.nextChunk < next.chunkCount!
    ) {
      next.handoffs[chunk] = next.nextChunk;
      next.nextChunk += 1;
    }
    next.updatedAt = new Date().toISOString();
    return next;
  });
  const handoff = value.handoffs[chunk];
  if (value.status === 'RUNNING' && handoff !== undefined && !value.completedChunks.includes(handoff)) {
    return { outcome: 'scored', next: handoff };
  }
  if (value.status === 'RUNNING' && value.completedChunks.length === value.chunkCount) {
    return { outcome: (await assemble(deps, value, invocation)) ? 'assembled' : 'scored', next: null };
  }
  return { outcome: 'scored', next: null };
}

/**
 * Concatenates the chunks' results, once: the first invocation to create assembly.json does it (a retry
 * of that same invocation finds its own claim and does it again, harmlessly: the outputs are the same).
 * Returns false when another invocation holds the claim.
 */
export async function assemble(
  deps: ScoringWorkerDeps,
  job: ScoringJobRecord,
  invocation: Pick<ScoringInvocation, 'invocationId'>,
): Promise<boolean> {
  const claimKey = layout.scoringAssembly(job.id);
  try {
    await deps.docs.create(claimKey, { owner: invocation.invocationId, at: new Date().toISOString() });
  } catch (error) {
    if (!(error instanceof LymphoscopeError)) throw error;
    const claim = await deps.docs.get<{ owner: string; at: string }>(claimKey);
    if (!claim) return false;
    if (claim.value.owner !== invocation.invocationId) {
      // A claim this old belongs to an assembler that died after its retries; one reader takes it over.
      if (Date.parse(claim.value.at) > Date.now() - SCORING_STALL_MS) return false;
      try {
        await deps.docs.replace(
          claimKey,
          { owner: invocation.invocationId, at: new Date().toISOString() },
          claim.etag,
        );
      } catch (lost) {
        if (lost instanceof LymphoscopeError) return false;
        throw lost;
      }
    }
  }
  const indexes = Array.from({ length: job.chunkCount! }, (_, i) => i);
  const texts = await mapLimit(indexes, 8, async (chunk) => {
    const object = await deps.store.get(layout.scoringChunk(job.id, chunk, 'result.jsonl'));
    if (!object) throw new Error(`Scoring job ${job.id}: chunk ${chunk} has no result`);
    return object.body.toString('utf8');
  });
  const rows = texts.flatMap(parseRows);
  const summary = summarise(rows);
  if (rows.length !== job.totalImages) {
    deps.log.error('scoring results do not match the plan', {
      jobId: job.id,
      rows: rows.length,
      planned: job.totalImages,
    });
  }
  await deps.store.put(layout.scoringResults(job.id, 'results.jsonl'), toJsonLines(rows), {
    contentType: 'application/x-ndjson',
  });
  await deps.store.put(layout.scoringResults(job.id, 'results.csv'), toCsv(rows), {
    contentType: 'text/csv',
  });
  await deps.docs.put(layout.scoringResults(job.id, 'summary.json'), summary);
  await deps.docs.update<ScoringJobRecord>(layout.scoringJob(job.id), (j) =>
    j.status === 'RUNNING' ? { ...j, status: 'SUCCEEDED', summary, ...ended() } : j,
  );
  deps.log.info('scoring assembled', { jobId: job.id, ...summary });
  return true;
}

function ended() {
  const now = new Date().toISOString();
  return { finishedAt: now, updatedAt: now };
}

export function summarise(rows: ScoringRow[]): ScoringCounts {
  const summary: ScoringCounts = {
    images: rows.length,
    scored: 0,
    failed: 0,
    byLabel: { ALL: 0, NORMAL: 0 },
    needsReview: 0,
    byReason: Object.fromEntries(REVIEW_REASONS.map((r) => [r, 0])) as ScoringCounts['byReason'],
  };
  for (const row of rows) {
    if (row.error !== null || row.label === null) {
      summary.failed += 1;
      continue;
    }
    summary.scored += 1;
    summary.byLabel[row.label] += 1;
    if (row.needsReview) summary.needsReview += 1;
    for (const reason of row.reviewReasons) summary.byReason[reason] += 1;
  }
  return summary;
}

export function parseRows(text: string): ScoringRow[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ScoringRow);
}

export const toJsonLines = (rows: ScoringRow[]) => rows.map((r) => JSON.stringify(r) + '\n').join('');

const CSV_HEADER = 'key,imageId,label,probabilityAll,needsReview,reviewReasons,error';

/** RFC 4180 quoting; a leading = + - @ is neutralised so a spreadsheet never runs a key as a formula. */
function csvField(value: string | number | boolean | null): string {
  if (value === null) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(rows: ScoringRow[]): string {
  const lines = rows.map((r) =>
    [r.key, r.imageId, r.label, r.probabilityAll, r.needsReview, r.reviewReasons.join(';'), r.error]
      .map(csvField)
      .join(','),
  );
  return [CSV_HEADER, ...lines].join('\n') + '\n';
}

/** Runs `fn` over `items` with at most `limit` at once; results in input order. */
async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
