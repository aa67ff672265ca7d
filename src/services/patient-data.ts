import { ulid } from 'ulid';
import { notFound } from '../errors';
import type { JsonDocuments } from '../storage/json-documents';
import { layout, safeId } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import { requireRole, type Caller } from './auth';
import type { DataJobRecord, DataJobRunner, DataJobStep } from './data-jobs';
import type { ModelCard } from './models';
import type { Snapshot } from './training';

/**
 * The data protection use cases: delete one prediction, a dataset, everything of one partner, and hand a
 * partner its data back. Each plans a DataJob (data-jobs.ts) and runs it; what is stored where and for
 * how long is in docs/DATA.md.
 */
export class PatientDataService {
  constructor(
    private readonly store: ObjectStore,
    private readonly docs: JsonDocuments,
    readonly jobs: DataJobRunner,
  ) {}

  /**
   * A partner deletes its own prediction (an admin any): image, heat map, record (with its review),
   * owner index and review marker, every version. Another partner's id is NOT_FOUND and touches nothing.
   * An image a reviewer added to a dataset is the dataset's now and stays (deleteDataset removes it).
   */
  async deletePrediction(caller: Caller, predictionId: string): Promise<DataJobRecord> {
    safeId(predictionId, 'predictionId');
    const jobId = `delete-prediction-${predictionId}`;
    const previous = await this.jobs.get(jobId);
    let partnerId: string;
    if (previous) {
      partnerId = previous.partnerId;
    } else {
      partnerId = caller.partnerId;
      if (caller.role === 'ADMIN') {
        const owner = await this.docs.get<{ partnerId: string }>(layout.predictionOwner(predictionId));
        if (owner) partnerId = owner.value.partnerId;
      }
      const files = await this.store.listVersions(layout.predictionFilesPrefix(partnerId, predictionId), {
        limit: 1,
      });
      if (files.length === 0) throw notFound('Prediction', predictionId);
    }
    if (caller.role !== 'ADMIN' && partnerId !== caller.partnerId) throw notFound('Prediction', predictionId);
    return this.jobs.start(
      caller,
      { id: jobId, kind: 'DELETE_PREDICTION', target: predictionId, partnerId, kept: [] },
      [
        { op: 'purge', prefix: layout.pendingReview(predictionId) },
        { op: 'purge', prefix: layout.predictionFilesPrefix(partnerId, predictionId) },
        { op: 'purge', prefix: layout.predictionOwner(predictionId) },
      ],
    );
  }

  /**
   * A scientist deletes a dataset: its record, images, duplicate markers and snapshots. Snapshots that a
   * registered model version was trained on, and the images they list, are kept unless `includePinned`
   * (admin only), so every model's lineage can still be checked; a model version itself keeps its weights
   * and its card (metrics, curves, class means of morphology, ids of job, dataset and snapshot), which
   * hold no image and no subject id.
   */
  async deleteDataset(caller: Caller, datasetId: string, includePinned: boolean): Promise<DataJobRecord> {
    safeId(datasetId, 'datasetId');
    if (includePinned) requireRole(caller, 'ADMIN');
    const jobId = `delete-dataset-${datasetId}`;
    const previous = await this.jobs.get(jobId);
    if (!previous && !(await this.store.head(layout.dataset(datasetId)))) {
      const left = await this.store.listVersions(`datasets/${datasetId}/`, { limit: 1 });
      if (left.length === 0) throw notFound('Dataset', datasetId);
    }
    const pins = includePinned ? { versions: [], keys: [] } : await this.pinned(datasetId);
    const kept = pins.versions.length
      ? [
          `${pins.keys.length} objects (snapshots and the images they list) pinned by model versions ` +
            `${pins.versions.join(', ')}; delete them with includePinned (admin).`,
        ]
      : [];
    return this.jobs.start(
      caller,
      {
        id: jobId,
        kind: 'DELETE_DATASET',
        target: datasetId,
        partnerId: previous?.partnerId ?? caller.partnerId,
        kept,
      },
      [
        // The record first: from then on nothing can be added to the dataset.
        { op: 'purge', prefix: layout.dataset(datasetId) },
        { op: 'purge', prefix: layout.imagesPrefix(datasetId), keep: pins.keys },
        { op: 'purge', prefix: layout.imageShaPrefix(datasetId) },
        { op: 'purge', prefix: layout.snapshotsPrefix(datasetId), keep: pins.keys },
      ],
    );
  }

  /** Snapshots of this dataset that a model version names in its lineage, and the image keys they list. */
  private async pinned(datasetId: string): Promise<{ versions: string[]; keys: string[] }> {
    const cards = (await this.store.listAll(layout.modelsPrefix(), { limit: 1_000_000 })).filter((o) =>
      o.key.endsWith('/card.json'),
    );
    const versions: string[] = [];
    const keys = new Set<string>();
    for (const c of cards) {
      const card = (await this.docs.get<ModelCard>(c.key))?.value;
      if (!card || card.lineage.datasetId !== datasetId || !card.lineage.snapshotId) continue;
      const snapshotKey = layout.snapshot(datasetId, card.lineage.snapshotId);
      const snapshot = (await this.docs.get<Snapshot>(snapshotKey))?.value;
      if (!snapshot) continue;
      versions.push(card.version);
      keys.add(snapshotKey);
      for (const item of snapshot.items) keys.add(item.key);
    }
    return { versions, keys: [...keys] };
  }

  /**
   * Everything of one partner (admin): predictions with their images, heat maps, reviews, owner indexes
   * and review markers, exports, uploads its key made, its retention setting. The key itself is revoked
   * with revokeApiKey; audit records (ids and counts, never images) are kept as the record of the erasure.
   */
  async erasePartnerData(caller: Caller, partnerId: string): Promise<DataJobRecord> {
    requireRole(caller, 'ADMIN');
    safeId(partnerId, 'partnerId');
    const plan: DataJobStep[] = [
      { op: 'purgePredictions', partnerId },
      { op: 'purge', prefix: layout.exportsPrefix(partnerId) },
      { op: 'purgeUploads', createdBy: partnerId },
      { op: 'purge', prefix: layout.partnerRetention(partnerId) },
    ];
    return this.jobs.start(
      caller,
      {
        id: `erase-partner-${partnerId}`,
        kind: 'ERASE_PARTNER',
        target: partnerId,
        partnerId,
        kept: ['audit records (who did what, ids and counts only)', 'the API key record (revoke it)'],
      },
      plan,
    );
  }

  /**
   * A partner's predictions and reviews as JSON Lines (and optionally copies of its images) in a fresh
   * export folder, fetched through presigned URLs. An admin may export any partner; a partner itself.
   */
  async exportPartnerData(caller: Caller, partnerId: string, includeImages: boolean): Promise<DataJobRecord> {
    safeId(partnerId, 'partnerId');
    // Another partner's data does not exist as far as a partner can tell.
    if (caller.role !== 'ADMIN' && partnerId !== caller.partnerId) throw notFound('Partner', partnerId);
    const jobId = `export-${ulid().toLowerCase()}`;
    const folder = layout.exportFolder(partnerId, jobId);
    const plan: DataJobStep[] = [
      { op: 'exportRecords', partnerId, folder, includeImages },
      ...(includeImages ? [{ op: 'exportImages' as const, partnerId, folder }] : []),
    ];
    return this.jobs.start(
      caller,
      { id: jobId, kind: 'EXPORT_PARTNER', target: partnerId, partnerId, kept: [] },
      plan,
    );
  }

  /** Runs a job further (its own caller or an admin). */
  async resume(caller: Caller, jobId: string): Promise<DataJobRecord> {
    await this.jobs.require(caller, jobId);
    return this.jobs.run(caller, jobId);
  }
}
