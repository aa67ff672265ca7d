import { ulid } from 'ulid';
import { badInput, conflict, ErrorCode, LymphoscopeError, notFound, tooLarge } from '../errors';
import { decodeImage, sniffImage, type ImageInfo } from '../ml/image/decode';
import { compareToNorms, type Morphology, type MorphologyNorms } from '../ml/features/morphology';
import type { ReviewReason } from '../ml/serving/decision';
import { analyzeCell } from '../ml/serving/predictor';
import type { JsonDocuments } from '../storage/json-documents';
import { layout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import type { Logger } from '../observability/log';
import type { Caller } from './auth';
import type { DatasetService } from './datasets';
import { classToLabel, type CellLabel } from './labels';
import type { LoadedModel, ModelRegistry } from './models';
import type { RetentionPolicy } from './retention';
import { pageOf, type Page } from './pagination';
import { currentPixelBudget } from './work-budget';
import { decodeBase64, imageLimits } from './image-limits';
import { UploadService } from './uploads';

export interface ReviewRecord {
  label: CellLabel;
  note: string | null;
  reviewer: string;
  reviewedAt: string;
  agreesWithModel: boolean;
  addedToDatasetId: string | null;
}

export interface PredictionRecord {
  id: string;
  partnerId: string;
  label: CellLabel;
  probabilityAll: number;
  /** The network's own probability before fusion (absent on records written before it was kept). */
  networkProbability?: number;
  threshold: number;
  /** True exactly when the prediction's review reasons are not empty (read them with reviewReasonsOf). */
  needsReview: boolean;
  /** Absent on records written before reasons were kept: read them with reviewReasonsOf. */
  reviewReasons?: ReviewReason[];
  /** Null when the version has no out-of-domain model; absent on records written before it was kept. */
  outOfDomainScore?: number | null;
  modelVersion: string;
  morphology: (Morphology & { comparisons: MorphologyComparison[] }) | null;
  heatmapKey: string | null;
  imageKey: string;
  source: string;
  createdAt: string;
  review: ReviewRecord | null;
}

export interface MorphologyComparison {
  feature: string;
  value: number;
  allMean: number | null;
  normalMean: number | null;
  zAll: number | null;
  zNormal: number | null;
  closerTo: CellLabel | null;
}

export interface PredictInput {
  imageBase64?: string | null;
  imageId?: string | null;
  datasetId?: string | null;
  uploadId?: string | null;
  modelVersion?: string | null;
  explain?: boolean | null;
}

/**
 * Why a prediction needs review. A record written before reasons were kept had one rule, the review band,
 * so its needsReview reads as [UNCERTAIN]; a record with reasons has needsReview === (reasons not empty).
 */
export function reviewReasonsOf(
  record: Pick<PredictionRecord, 'needsReview' | 'reviewReasons'>,
): ReviewReason[] {
  return record.reviewReasons ?? (record.needsReview ? ['UNCERTAIN'] : []);
}

/** Each feature against the model's training-set class norms, in the API's vocabulary. */
export function compareMorphology(m: Morphology, norms: MorphologyNorms | null): MorphologyComparison[] {
  const finite = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : v);
  return compareToNorms(m, norms ?? { all: {}, hem: {} }).map((c) => ({
    feature: c.feature,
    value: c.value,
    allMean: finite(norms?.all.mean[c.feature]),
    normalMean: finite(norms?.hem.mean[c.feature]),
    zAll: finite(c.zAll),
    zNormal: finite(c.zHem),
    closerTo: c.closerTo === null ? null : c.closerTo === 'all' ? 'ALL' : 'NORMAL',
  }));
}

/**
 * Like Promise.all, but answers only once every promise has settled: a call that fails has no write of
 * its own still in flight (landing after the caller was told), whichever write failed first.
 */
async function settledAll(promises: Array<Promise<unknown> | null>): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** A call's model: the version it is served by, loaded. */
type ModelLookup = LoadedModel & { version: string };

/** Milliseconds to a tenth: the log's stages are a few ms each, whole ms would hide them. */
const tenths = (ms: number) => Math.round(ms * 10) / 10;

export class PredictionService {
  constructor(
    private readonly store: ObjectStore,
    private readonly docs: JsonDocuments,
    private readonly models: ModelRegistry,
    private readonly datasets: DatasetService,
    private readonly limits: {
      batchSize: number;
      inlineImageBytes: number;
      uploadBytes: number;
      imageSide: number;
    },
    private readonly log: Logger,
    /** Tags the image and heat map with their retention class (docs/DATA.md); absent: untagged. */
    private readonly retention?: RetentionPolicy,
  ) {
    this.uploads = new UploadService(store, docs, limits);
  }

  /** Confirmed uploads for predict(uploadId); stateless over the uploads/ prefix. */
  private readonly uploads: UploadService;

  private async resolveImage(
    caller: Caller,
    input: PredictInput,
  ): Promise<{ bytes: Buffer; source: string }> {
    const given = [input.imageBase64, input.imageId, input.uploadId].filter(
      (v) => v != null && v !== '',
    ).length;
    if (given !== 1) throw badInput('Give exactly one of imageBase64, imageId (with datasetId) or uploadId.');
    if (input.imageBase64) return { bytes: decodeBase64(input.imageBase64, this.limits), source: 'inline' };
    if (input.uploadId) {
      return {
        bytes: await this.uploads.readConfirmed(caller, input.uploadId),
        source: `upload:${input.uploadId}`,
      };
    }
    if (!input.datasetId) throw badInput('imageId needs datasetId too.', { field: 'datasetId' });
    if (caller.role === 'PARTNER') throw notFound('Image', `${input.datasetId}/${input.imageId}`);
    const { bytes } = await this.datasets.readImage(input.datasetId, input.imageId!);
    return { bytes, source: `dataset:${input.datasetId}/${input.imageId}` };
  }

  /** Reads the image's header (format, size, enough data for that size) before any costly work. */
  private admit(resolved: { bytes: Buffer }): ImageInfo {
    return sniffImage(resolved.bytes, imageLimits(this.limits, this.limits.uploadBytes));
  }

  async predict(caller: Caller, input: PredictInput): Promise<PredictionRecord> {
    const model = await this.startModelLookup(input);
    const image = await this.resolveImage(caller, input);
    this.admit(image);
    return this.predictResolved(caller, input, image, model);
  }

  /**
   * The version a call is served by (the one named, else the production alias, read on every call so
   * that a promotion serves on the next) and its loaded model, looked up while the caller reads and
   * decodes the image: the alias's GET (and a cold model's reads) overlap that CPU work instead of
   * preceding it. Resolves once the lookup's first request has had a turn of the event loop to go out
   * (a synchronous decode right after would otherwise hold it back); the lookup itself is awaited by
   * predictResolved, so its failure is still reported after the image's header checks.
   */
  private async startModelLookup(input: PredictInput): Promise<{ lookup: Promise<ModelLookup> }> {
    const lookup = (async () => {
      const version = input.modelVersion ?? (await this.models.productionVersion());
      if (!version) {
        throw new LymphoscopeError(
          ErrorCode.UNAVAILABLE,
          'No production model is set: promote a model version or name one.',
        );
      }
      return { version, ...(await this.models.load(version)) };
    })();
    // Awaited by predictResolved, unless the image fails first: never reported as unhandled meanwhile.
    lookup.catch(() => undefined);
    await new Promise<void>((resolve) => setImmediate(resolve));
    return { lookup };
  }

  private async predictResolved(
    caller: Caller,
    input: PredictInput,
    { bytes, source }: { bytes: Buffer; source: string },
    { lookup }: { lookup: Promise<ModelLookup> },
  ): Promise<PredictionRecord> {
    const started = performance.now();
    // Decoded while the lookup is in flight; its failure is reported after the lookup's, as before.
    // Both times are what this thread waited: the decode's own part, then what is left of each.
    const decoding = decodeImage(bytes, imageLimits(this.limits, this.limits.uploadBytes));
    decoding.catch(() => undefined);
    let decodeMs = performance.now() - started;
    let t = performance.now();
    const { version, network, card, onnx } = await lookup;
    const lookupMs = performance.now() - t;
    t = performance.now();
    const image = await decoding;
    decodeMs += performance.now() - t;
    const id = ulid().toLowerCase();
    const partnerId = caller.partnerId;
    const ext = image.format === 'jpeg' ? 'jpg' : image.format;
    const imageKey = layout.predictionImage(partnerId, id, ext);
    // Artifacts first, the record last: a prediction is visible only when everything it points to exists.
    // The image and the owner marker depend on nothing the analysis computes, so they are written while it
    // runs (on Lambda the S3 round trip, locally the local S3 server's file writes, overlap the pixel
    // work); the heat map follows the analysis. A failure of any write, or of the analysis, fails the call
    // before the record is written, and what was written is removed again (failBeforeRecord). The review
    // marker is written beside the record (commitRecord); the review queue skips a marker without one.
    const tags = Promise.resolve(this.retention?.pixelTags(partnerId));
    const inputsStored = tags.then((pixelTags) =>
      settledAll([
        this.store.put(imageKey, bytes, { contentType: `image/${image.format}`, tags: pixelTags }),
        this.docs.create(layout.predictionOwner(id), { partnerId }),
      ]),
    );
    // Awaited below on every path; this only keeps a write failing during the analysis from being
    // reported as unhandled before then.
    inputsStored.catch(() => undefined);
    const heatmapKey = layout.predictionHeatmap(partnerId, id);
    /**
     * A call that fails before its record is written changes nothing: once its writes have settled, what
     * they stored is removed (best effort; a crash in between leaves an orphan no listing shows).
     */
    const failBeforeRecord = async (error: unknown): Promise<never> => {
      await inputsStored.catch(() => undefined);
      const written = [imageKey, heatmapKey, layout.predictionOwner(id)];
      const removed = await Promise.allSettled(written.map((key) => this.store.delete(key)));
      const left = written.filter((_, i) => removed[i].status === 'rejected');
      if (left.length > 0) this.log.warn('failed prediction left objects behind', { predictionId: id, left });
      throw error;
    };
    let analysis: Awaited<ReturnType<typeof analyzeCell>>;
    try {
      analysis = await analyzeCell(network, card, image, { explain: input.explain !== false, onnx });
    } catch (error) {
      return failBeforeRecord(error);
    }

    const record: PredictionRecord = {
      id,
      partnerId,
      label: classToLabel(analysis.isAll ? 1 : 0),
      probabilityAll: analysis.probabilityAll,
      networkProbability: analysis.networkProbability,
      threshold: card.threshold,
      needsReview: analysis.reviewReasons.length > 0,
      reviewReasons: analysis.reviewReasons,
      outOfDomainScore: analysis.outOfDomainScore,
      modelVersion: version,
      morphology: {
        ...analysis.morphology,
        comparisons: compareMorphology(analysis.morphology, card.morphologyNorms),
      },
      heatmapKey: analysis.heatmapPng ? heatmapKey : null,
      imageKey,
      source,
      createdAt: new Date().toISOString(),
      review: null,
    };
    // What the caller waits for after the analysis: the inputs' writes if still in flight, the heat map,
    // the record and its review marker (written together).
    const storeStarted = performance.now();
    const heatmapPng = analysis.heatmapPng;
    await settledAll([
      inputsStored,
      heatmapPng
        ? tags.then((pixelTags) =>
            this.store.put(heatmapKey, heatmapPng, { contentType: 'image/png', tags: pixelTags }),
          )
        : null,
    ]).catch(failBeforeRecord);
    await this.commitRecord(record).catch(failBeforeRecord);
    const storeMs = performance.now() - storeStarted;
    // Where a prediction's time went, for operators and bench/end-to-end.ts: the wait for the model lookup
    // (production alias GET, model cache) left after the decode, the decode, the analysis' stages (timings)
    // and the S3 writes (storeMs).
    this.log.info('prediction', {
      predictionId: id,
      modelVersion: version,
      probabilityAll: Number(analysis.probabilityAll.toFixed(4)),
      needsReview: record.needsReview,
      reviewReasons: record.reviewReasons,
      outOfDomainScore: record.outOfDomainScore,
      ms: tenths(performance.now() - started),
      lookupMs: tenths(lookupMs),
      decodeMs: tenths(decodeMs),
      storeMs: tenths(storeMs),
      runtime: analysis.runtime,
      ...Object.fromEntries(Object.entries(analysis.timings).map(([k, v]) => [k, tenths(v)])),
    });
    return record;
  }

  /**
   * The record and, for a call that needs review, its review marker, written at once: one S3 round trip
   * instead of two for a flagged cell. A marker whose record is not (yet) stored is skipped by the review
   * queue, so the marker may land first. If either write fails, the call fails and the other is removed
   * again, so no record that needs review is left without its marker (best effort; a crash in between
   * leaves either a marker the queue skips or, at worst, a record whose marker is missing).
   */
  private async commitRecord(record: PredictionRecord): Promise<void> {
    const keys = [layout.prediction(record.partnerId, record.id)];
    if (record.needsReview) keys.push(layout.pendingReview(record.id));
    const bodies = [record, { partnerId: record.partnerId }];
    const written = await Promise.allSettled(keys.map((key, i) => this.docs.create(key, bodies[i])));
    const failed = written.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) return;
    const stored = keys.filter((_, i) => written[i].status === 'fulfilled');
    const removed = await Promise.allSettled(stored.map((key) => this.store.delete(key)));
    const left = stored.filter((_, i) => removed[i].status === 'rejected');
    if (left.length > 0)
      this.log.warn('failed prediction left objects behind', { predictionId: record.id, left });
    throw failed.reason;
  }

  async predictBatch(caller: Caller, inputs: PredictInput[]): Promise<PredictionRecord[]> {
    if (inputs.length === 0) throw badInput('inputs must hold at least one image.');
    if (inputs.length > this.limits.batchSize) {
      throw tooLarge(`At most ${this.limits.batchSize} images per predictBatch.`, {
        limit: this.limits.batchSize,
      });
    }
    // Every image is read and its header checked before any is predicted: a bad image late in the batch
    // fails the call before the earlier ones are stored.
    // So is the request's pixel budget, for all of them together.
    const resolved: Array<{ bytes: Buffer; source: string }> = [];
    let pixels = 0;
    for (const input of inputs) {
      const image = await this.resolveImage(caller, input);
      const { width, height } = this.admit(image);
      pixels += width * height;
      resolved.push(image);
    }
    currentPixelBudget()?.ensure(pixels);
    const results: PredictionRecord[] = [];
    for (const [i, input] of inputs.entries())
      results.push(
        await this.predictResolved(caller, input, resolved[i], await this.startModelLookup(input)),
      );
    return results;
  }

  /** A partner sees only its own predictions; anything else is NOT_FOUND, so ids leak nothing. */
  async get(caller: Caller, id: string): Promise<PredictionRecord | null> {
    let partnerId = caller.partnerId;
    if (caller.role !== 'PARTNER') {
      const owner = await this.docs.get<{ partnerId: string }>(layout.predictionOwner(id));
      if (!owner) return null;
      partnerId = owner.value.partnerId;
    }
    return (await this.docs.get<PredictionRecord>(layout.prediction(partnerId, id)))?.value ?? null;
  }

  async require(caller: Caller, id: string): Promise<PredictionRecord> {
    const found = await this.get(caller, id);
    if (!found) throw notFound('Prediction', id);
    return found;
  }

  /** Newest first; partners see their own, staff see every partner's. */
  async list(
    caller: Caller,
    filter: { needsReview?: boolean | null; modelVersion?: string | null },
    first: number,
    after?: string,
  ): Promise<Page<PredictionRecord>> {
    const prefix =
      caller.role === 'PARTNER' ? layout.predictionsPrefix(caller.partnerId) : 'prediction-owners/';
    const objects = await this.store.listAll(prefix, { limit: 100_000 });
    const ids = objects
      .map((o) => o.key.split('/').pop()!)
      .filter((name) => caller.role !== 'PARTNER' || /^[0-9a-z]{26}\.json$/.test(name))
      .map((name) => name.replace(/\.json$/, ''))
      .sort()
      .reverse();
    const filtering = filter.needsReview != null || filter.modelVersion != null;
    if (!filtering) {
      const page = pageOf(ids, (id) => id, first, after);
      const nodes = await Promise.all(page.items.map((i) => this.get(caller, i.node)));
      // An owner marker without its record (a prediction cut short by a storage fault, before its record
      // was written) is skipped: one such leftover must not break every staff listing.
      const items = page.items.flatMap((i, n) => (nodes[n] ? [{ cursor: i.cursor, node: nodes[n]! }] : []));
      return { ...page, items };
    }
    // Filters need the records; read in order until the page is full (bounded by the listing).
    // An unknown cursor gives an empty page, as the unfiltered listing does, never a restart from the top.
    const start = after ? (ids.includes(after) ? ids.indexOf(after) + 1 : ids.length) : 0;
    const matched: PredictionRecord[] = [];
    let index = start;
    for (; index < ids.length && matched.length <= first; index++) {
      const record = await this.get(caller, ids[index]);
      if (!record) continue;
      if (filter.needsReview != null && (record.needsReview && !record.review) !== filter.needsReview)
        continue;
      if (filter.modelVersion != null && record.modelVersion !== filter.modelVersion) continue;
      matched.push(record);
    }
    return pageOf(matched, (r) => r.id, first);
  }

  /**
   * Predictions waiting for review, oldest first (ULIDs sort by time); with `reason`, only those flagged for
   * it (read in order until the page is full, as the filtered listing does).
   */
  async reviewQueue(
    caller: Caller,
    first: number,
    after?: string,
    reason?: ReviewReason | null,
  ): Promise<Page<PredictionRecord>> {
    const objects = await this.store.listAll(layout.pendingReviewsPrefix(), { limit: 100_000 });
    const ids = objects.map((o) => o.key.split('/').pop()!).sort();
    // A marker is written beside its record (commitRecord): one whose record is not stored yet, or was
    // removed again by a failed call, is skipped, read in order until the page is full.
    const start = after ? (ids.includes(after) ? ids.indexOf(after) + 1 : ids.length) : 0;
    const matched: PredictionRecord[] = [];
    for (let index = start; index < ids.length && matched.length <= first;) {
      const batch = ids.slice(index, index + first + 1 - matched.length);
      index += batch.length;
      const records = await Promise.all(batch.map((id) => this.get(caller, id)));
      for (const record of records)
        if (record && (reason == null || reviewReasonsOf(record).includes(reason))) matched.push(record);
    }
    return pageOf(matched, (r) => r.id, first);
  }

  /** Compare-and-swap on the record: of two concurrent reviews, one wins and the other gets CONFLICT. */
  async applyReview(record: PredictionRecord, review: ReviewRecord): Promise<PredictionRecord> {
    const { value } = await this.docs.update<PredictionRecord>(
      layout.prediction(record.partnerId, record.id),
      (current) => {
        if (current.review)
          throw conflict(`Prediction ${record.id} was already reviewed by ${current.review.reviewer}.`);
        return { ...current, review };
      },
    );
    return value;
  }

  async presignedUrl(key: string | null, ttlSeconds: number): Promise<string | null> {
    return key ? this.store.presignGet(key, { expiresInSeconds: ttlSeconds }) : null;
  }

  async readImage(record: PredictionRecord): Promise<Buffer> {
    const object = await this.store.get(record.imageKey);
    if (!object) throw notFound('Prediction image', record.id);
    return object.body;
  }

  async clearPendingReview(id: string): Promise<void> {
    await this.store.delete(layout.pendingReview(id));
  }
}
