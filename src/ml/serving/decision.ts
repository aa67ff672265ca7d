/**
 * Why a prediction must be confirmed by a person. A prediction needs review exactly when this list is
 * not empty (never a separate flag that could disagree with it).
 *
 * - UNCERTAIN: probabilityAll lies inside the model's review band.
 * - OUT_OF_DOMAIN: the image is unlike anything the model was trained on (another lab's stain or
 *   magnification, not a single cell, a blank field), so its probability means little.
 */
export type ReviewReason = 'UNCERTAIN' | 'OUT_OF_DOMAIN';

export const REVIEW_REASONS: readonly ReviewReason[] = ['UNCERTAIN', 'OUT_OF_DOMAIN'];

/** The review band part of a decision rule: [reviewLow, reviewHigh) on probabilityAll. */
export interface ReviewBand {
  reviewLow: number;
  reviewHigh: number;
}

/** The reasons a cell with this probability (and out-of-domain verdict) must be reviewed, in a stable order. */
export function reviewReasons(
  band: ReviewBand,
  probabilityAll: number,
  outOfDomain: boolean,
): ReviewReason[] {
  const reasons: ReviewReason[] = [];
  if (probabilityAll >= band.reviewLow && probabilityAll < band.reviewHigh) reasons.push('UNCERTAIN');
  if (outOfDomain) reasons.push('OUT_OF_DOMAIN');
  return reasons;
}
