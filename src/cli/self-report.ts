import type { ReviewReason } from '../ml/serving/decision';

/**
 * What `lymphoscope evaluate` says about its own figures besides the metrics: whether the images were
 * part of the model's training data (then the figures overstate how it does on new cells), and what the
 * review band and the out-of-domain check did to them (a blast the model calls normal is safe only when
 * it is sent to review).
 */

export type OverlapWithTraining =
  { known: true; count: number; share: number } | { known: false; count: null; share: null; reason: string };

/**
 * How many of the evaluated images (by content hash) the model was trained on. The card lists the
 * SHA-256 of every training image in `trainingImageSha256`; a card without that list cannot say, and
 * the answer says so instead of claiming there is no overlap.
 */
export function overlapWithTraining(card: object, imageSha256: string[]): OverlapWithTraining {
  const hashes: unknown = (card as { trainingImageSha256?: unknown }).trainingImageSha256;
  if (!Array.isArray(hashes) || !hashes.every((h) => typeof h === 'string')) {
    return {
      known: false,
      count: null,
      share: null,
      reason: 'the model card lists no trainingImageSha256, so overlap with its training set is unknown',
    };
  }
  const training = new Set(hashes.map((h: string) => h.toLowerCase()));
  const count = imageSha256.filter((h) => training.has(h.toLowerCase())).length;
  return { known: true, count, share: imageSha256.length ? count / imageSha256.length : 0 };
}

/** One evaluated cell as serving answered it. */
export interface ScoredCell {
  /** 1: ALL (blast), 0: normal. */
  label: 0 | 1;
  calledAll: boolean;
  reviewReasons: ReviewReason[];
  /** Null when the model has no out-of-domain detector. */
  outOfDomainScore: number | null;
}

export interface ReviewFigures {
  /** Of the blasts, the share called ALL or sent to review: what a reader must not miss. NaN with no blast. */
  allOrReviewSensitivity: number;
  /** Share of all cells with at least one review reason. */
  reviewRate: number;
  /** Share of all cells flagged OUT_OF_DOMAIN; null when the model has no out-of-domain detector. */
  outOfDomainRate: number | null;
  /** How many cells carry each reason. */
  reasons: Record<ReviewReason, number>;
}

export function reviewFigures(cells: ScoredCell[]): ReviewFigures {
  const share = (n: number, of: number) => (of > 0 ? n / of : Number.NaN);
  const blasts = cells.filter((c) => c.label === 1);
  const caught = blasts.filter((c) => c.calledAll || c.reviewReasons.length > 0).length;
  const reasons: Record<ReviewReason, number> = { UNCERTAIN: 0, OUT_OF_DOMAIN: 0 };
  for (const cell of cells) for (const reason of cell.reviewReasons) reasons[reason]++;
  const hasDetector = cells.some((c) => c.outOfDomainScore !== null);
  return {
    allOrReviewSensitivity: share(caught, blasts.length),
    reviewRate: share(cells.filter((c) => c.reviewReasons.length > 0).length, cells.length),
    outOfDomainRate: hasDetector ? share(reasons.OUT_OF_DOMAIN, cells.length) : null,
    reasons,
  };
}
