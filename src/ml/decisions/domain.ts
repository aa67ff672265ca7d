import { badInput } from '../../errors';
import type { RgbImage } from '../image/decode';

import * as detector from '../features/out-of-domain';

/**
 * The one place training reaches the out-of-domain detector (src/ml/features/out-of-domain.ts). Training only
 * needs three functions of it, so they are named here as an interface: the fitting below is written
 * against that interface and tested with any implementation of it.
 */
export type DomainModel = detector.DomainModel;

export interface DomainApi {
  /** Colour, background, size, sharpness... statistics of one image. */
  domainFeatures(image: RgbImage): Float64Array;
  /** A JSON-serialisable model of the training images' features. */
  fitDomainModel(features: Float64Array[]): DomainModel;
  /** Larger = further from the training data. */
  domainScore(model: DomainModel, features: Float64Array): number;
}

/** The detector training fits and serving applies. */
export function domainApi(): DomainApi {
  return detector;
}

/** In-domain cells of new subjects we accept to flag OUT_OF_DOMAIN (issue 11: at most 10%; we aim at 5%). */
export const TARGET_FALSE_ALARM_RATE = 0.05;

export interface DomainScores {
  seed: number;
  fold: number;
  /** Scores of the fold's held-out cells under a domain model fitted on the other folds' cells. */
  scores: number[];
}

export interface OutOfDomainReport {
  /** What the threshold was chosen for. */
  targetFalseAlarmRate: number;
  /**
   * The measured rate on held-out subjects: each fold's cells against a threshold chosen on the other
   * folds' scores (so the threshold never saw the cells it is judged on), pooled.
   */
  outOfFoldFalseAlarmRate: number;
  /** Out-of-fold scores the threshold was chosen on. */
  n: number;
  rule: string;
}

/**
 * The conformal quantile: the ceil((n + 1)(1 - rate))-th smallest score, so that a new in-domain score,
 * exchangeable with these, exceeds it with probability at most `rate`. Above the largest score when n is
 * too small for that rank.
 */
export function conformalQuantile(scores: number[], rate: number): number {
  if (scores.length === 0) throw badInput('A threshold needs at least one score.');
  const sorted = scores.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) throw badInput('No finite score to choose a threshold from.');
  const rank = Math.ceil((sorted.length + 1) * (1 - rate));
  if (rank > sorted.length) {
    const top = sorted[sorted.length - 1];
    return top + Math.max(Math.abs(top) * 1e-6, 1e-9);
  }
  return sorted[rank - 1];
}

/**
 * Chooses the out-of-domain threshold from out-of-fold scores and measures its false-alarm rate on held-out
 * folds. A score strictly above the threshold is out of domain.
 */
export function fitDomainThreshold(
  folds: DomainScores[],
  rate = TARGET_FALSE_ALARM_RATE,
): { threshold: number; report: OutOfDomainReport } {
  const all = folds.flatMap((f) => f.scores);
  const threshold = conformalQuantile(all, rate);
  const flags = heldOutDomainFlags(folds, rate);
  const judged = flags.filter((f): f is boolean[] => f !== null).flat();
  const alarms = judged.filter(Boolean).length;
  const total = judged.length;
  return {
    threshold,
    report: {
      targetFalseAlarmRate: rate,
      outOfFoldFalseAlarmRate: total ? alarms / total : NaN,
      n: all.length,
      rule:
        'Each fold scored by a domain model fitted on the other folds; threshold = the conformal ' +
        `(1 - ${rate}) quantile of those out-of-fold scores; the domain model served is fitted on all training cells.`,
    },
  };
}

/**
 * For each fold, whether each of its cells is out of domain against a threshold chosen on the other folds
 * of the same seed (so the threshold never saw the cells it judges); null for a fold with no other fold to
 * choose from. In `folds`' order.
 */
export function heldOutDomainFlags(
  folds: DomainScores[],
  rate = TARGET_FALSE_ALARM_RATE,
): Array<boolean[] | null> {
  return folds.map((fold) => {
    const others = folds.filter((f) => f.seed === fold.seed && f.fold !== fold.fold).flatMap((f) => f.scores);
    if (others.length === 0) return null;
    const t = conformalQuantile(others, rate);
    return fold.scores.map((s) => s > t);
  });
}
