import { LymphoscopeError, notFound, UnreachableCaseError } from '../errors';
import type { Logger } from '../observability/log';
import type { JsonDocuments } from '../storage/json-documents';
import { layout } from '../storage/layout';
import type { ObjectStore, ObjectVersionInfo } from '../storage/object-store';
import type { AuditLog } from './audit';
import type { Caller } from './auth';
import type { PredictionRecord } from './predictions';

/**
 * Deletion and export of patient data as resumable jobs, the way training is: the job record in S3
 * (data-jobs/<id>.json) holds the work that remains as a list of steps, and a step leaves the list only
 * once its work is done. A caller runs the job for at most the configured budget; what is left is
 * finished by calling the same mutation again (it is idempotent), and a process that died half way
 * leaves a record that the next call resumes. Every step is itself idempotent: it lists what is still
 * there and removes that, so a step cut short by a crash is simply run again.
 *
 * Deleting removes every VERSION of every object (ListObjectVersions, then DeleteObjects with the
 * version ids): in a versioned bucket a plain DeleteObject only hides the bytes behind a delete marker.
 */

export type DataJobKind = 'DELETE_PREDICTION' | 'DELETE_DATASET' | 'ERASE_PARTNER' | 'EXPORT_PARTNER';
export type DataJobStatus = 'RUNNING' | 'SUCCEEDED';

export type DataJobStep =
  /** Every version under `prefix`, except the keys in `keep`. */
  | { op: 'purge'; prefix: string; keep?: string[] }
  /** A partner's prediction files and, for each of them, the owner index and review marker. */
  | { op: 'purgePredictions'; partnerId: string }
  /** Presigned uploads a key created (bytes sent for predict(uploadId) stay there until confirmed and expired). */
  | { op: 'purgeUploads'; createdBy: string }
  /** The partner's prediction records (reviews included) as JSON Lines in the export folder. */
  | { op: 'exportRecords'; partnerId: string; folder: string; includeImages: boolean }
  /** Copies of the classified images beside them. */
  | { op: 'exportImages'; partnerId: string; folder: string };

export interface DataJobRecord {
  id: string;
  kind: DataJobKind;
  /** What the job is about: a prediction id, a dataset id or a partner id. */
  target: string;
  /** Whose data it is (a partner sees only jobs about its own data). */
  partnerId: string;
  requestedBy: string;
  status: DataJobStatus;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** How many times the job was run to its end (a finished deletion asked again runs again, and finds nothing). */
  runs: number;
  remaining: DataJobStep[];
  /** Distinct keys and versions removed, over all runs. */
  objectsDeleted: number;
  versionsDeleted: number;
  /** What was deliberately left, and why. */
  kept: string[];
  exportKey: string | null;
  exportedPredictions: number;
  exportedImages: number;
  lease: { owner: string; until: string } | null;
  /** The counts when the current run was planned: a run's own figures are the difference. */
  runBaseline: { objectsDeleted: number; versionsDeleted: number };
}

/** How much of its work one step did: counts to add, and whether the step is finished. */
interface StepResult {
  done: boolean;
  keys?: number;
  versions?: number;
  exportedPredictions?: number;
  exportedImages?: number;
  exportKey?: string;
}

/** At most this many versions are removed per pass of a chunked step, so progress is saved often. */
const CHUNK = 5000;
const EXPORT_FILE = 'predictions.jsonl';

export class DataJobRunner {
  constructor(
    private readonly store: ObjectStore,
    private readonly docs: JsonDocuments,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly budgetMs: number,
  ) {}

  async get(jobId: string): Promise<DataJobRecord | null> {
    return (await this.docs.get<DataJobRecord>(layout.dataJob(jobId)))?.value ?? null;
  }

  /** The job if the caller may see it (its own data, or an admin); otherwise NOT_FOUND, which leaks nothing. */
  async require(caller: Caller, jobId: string): Promise<DataJobRecord> {
    const job = await this.get(jobId);
    if (!job || (caller.role !== 'ADMIN' && job.partnerId !== caller.partnerId))
      throw notFound('Data job', jobId);
    return job;
  }

  /**
   * Creates the job with its plan, or, when it exists, resumes it (RUNNING) or plans it again
   * (SUCCEEDED: asking twice to delete something deletes whatever has appeared since, usually nothing).
   * Then runs it for at most the budget.
   */
  async start(
    caller: Caller,
    fields: Pick<DataJobRecord, 'id' | 'kind' | 'target' | 'partnerId' | 'kept'>,
    plan: DataJobStep[],
  ): Promise<DataJobRecord> {
    const key = layout.dataJob(fields.id);
    const now = new Date().toISOString();
    const existing = await this.docs.get<DataJobRecord>(key);
    if (!existing) {
      const job: DataJobRecord = {
        ...fields,
        requestedBy: caller.keyId,
        status: 'RUNNING',
        createdAt: now,
        updatedAt: now,
        finishedAt: null,
        runs: 0,
        remaining: plan,
        objectsDeleted: 0,
        versionsDeleted: 0,
        exportKey: null,
        exportedPredictions: 0,
        exportedImages: 0,
        lease: null,
        runBaseline: { objectsDeleted: 0, versionsDeleted: 0 },
      };
      try {
        await this.docs.create(key, job);
      } catch (error) {
        // Created by a concurrent call: run that one.
        if (!(error instanceof LymphoscopeError) || error.code !== 'CONFLICT') throw error;
      }
    } else if (existing.value.status === 'SUCCEEDED') {
      await this.docs.update<DataJobRecord>(key, (job) =>
        job.status === 'SUCCEEDED'
          ? {
              ...job,
              status: 'RUNNING',
              remaining: plan,
              kept: fields.kept,
              finishedAt: null,
              updatedAt: now,
            }
          : job,
      );
    }
    return this.run(caller, fields.id);
  }

  /**
   * Runs the job's remaining steps until none is left or the budget is spent. Only one caller runs a
   * job at a time (a lease in the record, like a training worker's); another gets the job as it stands.
   */
  async run(caller: Caller, jobId: string): Promise<DataJobRecord> {
    const key = layout.dataJob(jobId);
    const deadline = Date.now() + this.budgetMs;
    const owner = `${caller.keyId}:${Math.random().toString(36).slice(2)}`;
    let claimed = false;
    let job = (
      await this.docs.update<DataJobRecord>(key, (current) => {
        claimed = false;
        const held =
          current.lease && current.lease.owner !== owner && Date.parse(current.lease.until) > Date.now();
        if (current.status !== 'RUNNING' || held) return current;
        claimed = true;
        return { ...current, lease: { owner, until: new Date(deadline + 60_000).toISOString() } };
      })
    ).value;
    if (!claimed) return job;

    while (job.remaining.length > 0) {
      const step = job.remaining[0];
      const result = await this.execute(step);
      job = (
        await this.docs.update<DataJobRecord>(key, (current) => {
          const stillFirst = JSON.stringify(current.remaining[0]) === JSON.stringify(step);
          return {
            ...current,
            remaining: result.done && stillFirst ? current.remaining.slice(1) : current.remaining,
            objectsDeleted: current.objectsDeleted + (result.keys ?? 0),
            versionsDeleted: current.versionsDeleted + (result.versions ?? 0),
            exportedPredictions: result.exportedPredictions ?? current.exportedPredictions,
            exportedImages: current.exportedImages + (result.exportedImages ?? 0),
            exportKey: result.exportKey ?? current.exportKey,
            updatedAt: new Date().toISOString(),
          };
        })
      ).value;
      if (job.remaining.length > 0 && Date.now() >= deadline) break;
    }

    const finished = job.remaining.length === 0;
    job = (
      await this.docs.update<DataJobRecord>(key, (current) => ({
        ...current,
        status: finished ? 'SUCCEEDED' : current.status,
        finishedAt: finished ? new Date().toISOString() : current.finishedAt,
        runs: current.runs + (finished ? 1 : 0),
        lease: null,
      }))
    ).value;
    const counts = {
      jobId,
      kind: job.kind,
      objectsDeleted: job.objectsDeleted - job.runBaseline.objectsDeleted,
      versionsDeleted: job.versionsDeleted - job.runBaseline.versionsDeleted,
      remainingSteps: job.remaining.length,
    };
    // Ids and counts only: never an image, a name or a subject id.
    this.log.info('data job ran', { ...counts, status: job.status });
    if (finished) {
      await this.audit.record(caller, `data.${job.kind.toLowerCase()}`, job.target, null, {
        ...counts,
        exportedPredictions: job.exportedPredictions,
        exportedImages: job.exportedImages,
        kept: job.kept,
      });
    }
    return job;
  }

  private async execute(step: DataJobStep): Promise<StepResult> {
    switch (step.op) {
      case 'purge': {
        const keep = new Set(step.keep ?? []);
        const versions = (await this.store.listVersions(step.prefix, { limit: CHUNK + keep.size })).filter(
          (v) => !keep.has(v.key),
        );
        return { ...(await this.remove(versions.slice(0, CHUNK))), done: versions.length <= CHUNK };
      }
      case 'purgePredictions': {
        const versions = await this.store.listVersions(layout.predictionsPrefix(step.partnerId), {
          limit: CHUNK,
        });
        const ids = new Set(versions.map((v) => v.key.split('/').pop()!.split('.')[0]));
        // The index and marker go last: while a prediction's files exist, its owner can still be found.
        const removed = await this.remove(versions);
        const owners = await this.markersOf('prediction-owners/', ids);
        const pending = await this.markersOf(layout.pendingReviewsPrefix(), ids);
        const markers = await this.remove([...owners, ...pending]);
        return {
          done: versions.length < CHUNK,
          keys: removed.keys + markers.keys,
          versions: removed.versions + markers.versions,
        };
      }
      case 'purgeUploads': {
        const records = (await this.store.listAll(layout.uploadsPrefix(), { limit: 200_000 })).filter((o) =>
          o.key.endsWith('/upload.json'),
        );
        const mine: ObjectVersionInfo[] = [];
        for (const record of records) {
          const upload = await this.docs.get<{ createdBy: string }>(record.key);
          if (upload?.value.createdBy !== step.createdBy) continue;
          mine.push(...(await this.store.listVersions(record.key.replace(/upload\.json$/, ''))));
        }
        return { ...(await this.remove(mine)), done: true };
      }
      case 'exportRecords':
        return this.exportRecords(step.partnerId, step.folder, step.includeImages);
      case 'exportImages':
        return this.exportImages(step.partnerId, step.folder);
      default:
        throw new UnreachableCaseError(step);
    }
  }

  /** Markers named by prediction id under a global prefix (one listing, not one call per id). */
  private async markersOf(prefix: string, ids: Set<string>): Promise<ObjectVersionInfo[]> {
    if (ids.size === 0) return [];
    const versions = await this.store.listVersions(prefix, { limit: 1_000_000 });
    return versions.filter((v) => ids.has(v.key.slice(prefix.length)));
  }

  private async remove(versions: ObjectVersionInfo[]): Promise<{ keys: number; versions: number }> {
    await this.store.deleteVersions(versions);
    return { keys: new Set(versions.map((v) => v.key)).size, versions: versions.length };
  }

  private async partnerRecords(partnerId: string): Promise<PredictionRecord[]> {
    const objects = await this.store.listAll(layout.predictionsPrefix(partnerId), { limit: 1_000_000 });
    const records: PredictionRecord[] = [];
    for (const o of objects) {
      if (!/\/[0-9a-z]{26}\.json$/.test(o.key)) continue;
      const found = await this.docs.get<PredictionRecord>(o.key);
      if (found) records.push(found.value);
    }
    return records;
  }

  /** Rewritten whole on each run: a run cut short leaves no half file that looks complete. */
  private async exportRecords(
    partnerId: string,
    folder: string,
    includeImages: boolean,
  ): Promise<StepResult> {
    const records = await this.partnerRecords(partnerId);
    // The record as stored (fields added later come along), without the storage keys, plus where the
    // image is in the export.
    const lines = records.map(({ imageKey, heatmapKey: _heatmap, partnerId: _partner, ...record }) =>
      JSON.stringify({ ...record, image: includeImages ? `images/${imageKey.split('/').pop()}` : null }),
    );
    const key = `${folder}${EXPORT_FILE}`;
    await this.store.put(key, lines.length ? lines.join('\n') + '\n' : '', {
      contentType: 'application/x-ndjson',
    });
    return { done: true, exportedPredictions: records.length, exportKey: key };
  }

  /** Server-side copies; an image already copied (by a run cut short) is not copied twice. */
  private async exportImages(partnerId: string, folder: string): Promise<StepResult> {
    const records = await this.partnerRecords(partnerId);
    const present = new Set((await this.store.listAll(`${folder}images/`)).map((o) => o.key));
    let copied = 0;
    for (const r of records) {
      const target = `${folder}images/${r.imageKey.split('/').pop()}`;
      if (present.has(target)) continue;
      try {
        await this.store.copy(r.imageKey, target);
        copied += 1;
      } catch (error) {
        // Expired by retention or deleted since the record was read: nothing to export.
        if (!(error instanceof LymphoscopeError) || error.code !== 'NOT_FOUND') throw error;
      }
    }
    return { done: true, exportedImages: copied };
  }

  /** The files of a finished export under its folder, for presigned links. */
  async exportFiles(job: DataJobRecord, limit: number): Promise<string[]> {
    if (job.kind !== 'EXPORT_PARTNER' || job.status !== 'SUCCEEDED') return [];
    const folder = layout.exportFolder(job.partnerId, job.id);
    return (await this.store.listAll(folder, { limit })).map((o) => o.key);
  }
}

export { EXPORT_FILE };
