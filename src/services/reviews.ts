import { badInput, conflict } from '../errors';
import type { AuditLog } from './audit';
import type { Caller } from './auth';
import type { DatasetService } from './datasets';
import type { CellLabel } from './labels';
import type { PredictionRecord, PredictionService } from './predictions';

/**
 * A human's verdict on a prediction. Blasts are never finalised without a human: the review is the
 * record of that check, and it can feed the image back into a dataset so the next model learns from it.
 */
export class ReviewService {
  constructor(
    private readonly predictions: PredictionService,
    private readonly datasets: DatasetService,
    private readonly audit: AuditLog,
  ) {}

  async submit(
    caller: Caller,
    input: { predictionId: string; label: CellLabel; note?: string | null; addToDatasetId?: string | null },
  ): Promise<PredictionRecord> {
    if (input.note != null && input.note.length > 2000)
      throw badInput('note must be at most 2000 characters.', { field: 'note' });
    const prediction = await this.predictions.require(caller, input.predictionId);
    if (prediction.review) {
      throw conflict(`Prediction ${prediction.id} was already reviewed by ${prediction.review.reviewer}.`);
    }
    let addedToDatasetId: string | null = null;
    if (input.addToDatasetId) {
      const added = await this.datasets.addImageBytes(caller, {
        datasetId: input.addToDatasetId,
        label: input.label,
        bytes: await this.predictions.readImage(prediction),
        filename: null,
        subjectId: null,
        source: `review:${prediction.id}`,
      });
      // The same bytes already in the dataset under the other label: saying "added" would leave the
      // training data contradicting the reviewer without anyone noticing.
      if (added.duplicate && added.image.label !== input.label) {
        throw conflict(
          `This cell is already in dataset ${input.addToDatasetId} labelled ${added.image.label} (image ${added.image.id}); ` +
            'remove it there first to relabel it, or submit the review without addToDatasetId.',
          { imageId: added.image.id, label: added.image.label },
        );
      }
      addedToDatasetId = input.addToDatasetId;
    }
    const reviewed = await this.predictions.applyReview(prediction, {
      label: input.label,
      note: input.note ?? null,
      reviewer: caller.keyId,
      reviewedAt: new Date().toISOString(),
      agreesWithModel: input.label === prediction.label,
      addedToDatasetId,
    });
    await this.predictions.clearPendingReview(prediction.id);
    await this.audit.record(
      caller,
      'prediction.review',
      prediction.id,
      { label: prediction.label },
      reviewed.review,
    );
    return reviewed;
  }
}
