import { createHash } from 'node:crypto';
import { runBounded } from '../concurrency/run-bounded';
import { domainApi, type RecipeCell } from '../ml/decisions';
import { decodeImage } from '../ml/image/decode';
import { toModelInput } from '../ml/image/preprocess';
import {
  measureMorphology,
  morphologyNorms,
  type Morphology,
  type MorphologyNorms,
} from '../ml/features/morphology';
import { initRuntime } from '../ml/runtime';
import type { Logger } from '../observability/log';
import { layout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import type { JsonDocuments } from '../storage/json-documents';
import type { JobRecord, Snapshot } from './training';

/** A job that cannot succeed however often it is tried (its data is bad): it is FAILED, not retried. */
export class JobCannotSucceed extends Error {}

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

/** What a job's worker loads first; a worker that goes on with the next unit of the job keeps it. */
export interface LoadedJobData {
  snapshot: Snapshot;
  data: LoadedSnapshot;
  runtime: { backend: string };
}

/** The runtime, the job's snapshot and every image of it, decoded and measured (logged with its time). */
export async function loadJobData(
  deps: { store: ObjectStore; docs: JsonDocuments },
  job: JobRecord,
  log: Logger,
): Promise<LoadedJobData> {
  const runtime = await initRuntime();
  const snapshot = (await deps.docs.get<Snapshot>(layout.snapshot(job.datasetId, job.snapshotId)))?.value;
  if (!snapshot) throw new JobCannotSucceed(`Snapshot ${job.snapshotId} is missing.`);
  const started = Date.now();
  const data = await loadSnapshot(deps.store, snapshot, job.config.inputSize);
  log.info('snapshot loaded', {
    images: snapshot.items.length,
    ms: Date.now() - started,
    rejected: data.rejected.length,
  });
  return { runtime, snapshot, data };
}
