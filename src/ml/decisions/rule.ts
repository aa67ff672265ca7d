import { badInput } from '../../errors';
import { spread, type Spread } from '../evaluation/cross-validation';
import { chooseThreshold, computeMetrics } from '../evaluation/metrics';
import { applyCalibration, crossFittedCalibration, fitPlatt, type PlattCalibration } from './calibration';
import { blastsNeeded, conformalLowerEdge } from './conformal';

/** One seed's out-of-fold scores: every cell once, scored by the fold model that never saw its subject. */
export interface OofScores {
  seed: number;
  ids: string[];
  labels: Array<0 | 1>;
  /** The fold (0-based) whose model scored each cell. */
  folds: number[];
  /** What serving would decide on before calibration: the network (TTA per recipe), fused when the recipe fuses. */
  probabilities: number[];
  /**
   * Whether each cell was out of domain under its fold's held-out threshold (outOfFoldDomainFlags): such a
   * cell goes to review whatever its score. Absent without an out-of-domain detector.
   */
  outOfDomain?: boolean[];
}

export interface DecisionOptions {
  /** The share of blasts the band's lower edge may let through. */
  alpha: number;
  /** The confidence of the Clopper-Pearson bound on that share. */
  confidence: number;
  /** The flagged share (ALL or review) the band should stay under to be worth having. */
  maxFlaggedShare: number;
}

export const DEFAULT_DECISION_OPTIONS: DecisionOptions = {
  alpha: 0.02,
  confidence: 0.95,
  maxFlaggedShare: 0.7,
};

/** Figures of the rule on out-of-fold scores; each a spread over the seeds (n = seeds). */
export interface OofFigures {
  rocAuc: Spread;
  /** Share of all cells that come back ALL or inside the band. */
  flaggedShare: Spread;
  /** Share of all cells sent to review: inside the band, or out of domain. */
  reviewRate: Spread;
  /** Share of all cells out of domain (judged out of fold); 0 without a detector. */
  outOfDomainRate: Spread;
  /** Share of blasts that come back ALL or for review (inside the band, or out of domain). */
  allOrReviewSensitivity: Spread;
  sensitivity: Spread;
  specificity: Spread;
  weightedF1: Spread;
}

/** What a model card records of how its threshold, band and calibration were fitted. */
export interface DecisionReport {
  rule: string;
  folds: number;
  seeds: number[];
  cells: number;
  blasts: number;
  calibration: PlattCalibration | null;
  /**
   * Expected calibration error of the pooled out-of-fold scores, raw and after Platt scaling fitted on the
   * other folds. `calibration` is null (the raw score serves) unless `after` is the lower.
   */
  ece: { before: number; after: number };
  threshold: number;
  reviewLow: number;
  reviewHigh: number;
  guarantee: {
    alpha: number;
    confidence: number;
    /** Distinct blasts the bound rests on (each at its lowest out-of-fold score over the seeds). */
    blasts: number;
    /**
     * Of those, blasts out of domain in every seed (judged out of fold): sent to review whatever their
     * score, so they count for the bound but do not hold the edge down.
     */
    caughtOutOfDomain: number;
    blastsBelowEdge: number;
    attained: boolean;
    /** One-sided Clopper-Pearson upper bound achieved on the share of blasts below the edge. */
    achievedBound: number;
    /** Split-conformal bound, in expectation: (k + 1) / (n + 1). */
    conformalBound: number;
    marginLogit: number;
    /** The normal tolerance factor k when the bound was out of reach (see conformalLowerEdge); null otherwise. */
    toleranceFactor: number | null;
    binding: 'clopper-pearson' | 'tolerance' | 'spacing';
    /** Blasts needed (none below the edge) for the bound to reach alpha at this confidence. */
    blastsNeeded: number;
  };
  outOfFold: OofFigures;
  maxFlaggedShare: number;
  /** Whether the mean out-of-fold flagged share stays within maxFlaggedShare. */
  worthHaving: boolean;
}

/**
 * Fits the decisions a model serves with from out-of-fold scores of one or more seeds:
 * 1. Platt calibration on all seeds' scores pooled; null when it cannot be fitted (see fitPlatt) or when,
 *    cross-fitted, it does not lower the out-of-fold calibration error (`ece.after` >= `ece.before`);
 * 2. the threshold maximising balanced accuracy on the calibrated pooled scores;
 * 3. the review band [low, threshold): low from conformalLowerEdge on each blast's LOWEST calibrated
 *    score over the seeds, so a blast that any seed's fold model scored low holds the edge down; a seed
 *    in which the blast was out of domain (held out, `outOfDomain`) does not count, since it went to review
 *    there whatever its score, and a blast out of domain in every seed is `caught`.
 * The figures are then those of this rule on each seed's scores, reported as a spread over seeds.
 */
export function fitDecisions(
  runs: OofScores[],
  options: DecisionOptions = DEFAULT_DECISION_OPTIONS,
): DecisionReport {
  if (runs.length === 0) throw badInput('Decisions need out-of-fold scores of at least one seed.');
  for (const run of runs) {
    const n = run.ids.length;
    if (
      run.labels.length !== n ||
      run.folds.length !== n ||
      run.probabilities.length !== n ||
      (run.outOfDomain && run.outOfDomain.length !== n)
    )
      throw badInput(`The out-of-fold scores of seed ${run.seed} have mismatched lengths.`);
  }
  const labels = runs.flatMap((r) => r.labels);
  const raw = runs.flatMap((r) => r.probabilities);
  const groups = runs.flatMap((r, i) => r.folds.map((f) => i * 1000 + f));
  const fitted = fitPlatt(labels, raw);
  const crossFitted = crossFittedCalibration(labels, raw, groups);
  const ece = {
    before: computeMetrics(labels, raw, 0.5).ece,
    after: computeMetrics(labels, fitted ? crossFitted : raw, 0.5).ece,
  };
  // Platt scaling serves only where it lowers the calibration error on folds it was not fitted on: a fit
  // that only helps the scores it saw would make "0.8" mean less, not more.
  const calibration = fitted && ece.after < ece.before ? fitted : null;
  const calibrate = (p: number) => applyCalibration(calibration, p);
  const calibrated = raw.map(calibrate);
  const threshold = chooseThreshold(labels, calibrated);

  const blastIds = new Set(runs.flatMap((run) => run.ids.filter((_, i) => run.labels[i] === 1)));
  // Should every blast be out of domain in every seed, the edge rests on all of them as if in domain.
  let lowestByBlast = lowestBlastScores(runs, calibrate, true);
  if (lowestByBlast.size === 0) lowestByBlast = lowestBlastScores(runs, calibrate, false);
  const caught = blastIds.size - lowestByBlast.size;
  const edge = conformalLowerEdge([...lowestByBlast.values()], { ...options, caught });
  const reviewLow = Math.min(edge.edge, threshold);
  const reviewHigh = threshold;

  const perSeed = runs.map((run) =>
    figuresOf(run.labels, run.probabilities.map(calibrate), run.outOfDomain, threshold, reviewLow),
  );
  const outOfFold = Object.fromEntries(
    (Object.keys(perSeed[0]) as Array<keyof OofFigures>).map((key) => [
      key,
      spread(perSeed.map((f) => f[key])),
    ]),
  ) as unknown as OofFigures;
  return {
    rule:
      'Out-of-fold scores of subject-grouped k-fold cross-validation over all training cells, one run per seed: ' +
      'Platt calibration on the pooled scores, kept only if, fitted on the other folds, it lowers the ' +
      'calibration error of each fold; threshold maximising balanced accuracy on them; review band ' +
      '[reviewLow, threshold) whose lower edge is the lowest edge keeping the one-sided Clopper-Pearson bound on ' +
      'blasts below it within alpha, or, where that is out of reach with this many blasts, the lower of one ' +
      'lower-tail spacing (in log-odds) below the lowest blast and the one-sided normal tolerance limit of the ' +
      "blasts' log-odds (1 - alpha coverage at the stated confidence); each blast at its lowest score over the " +
      'seeds in which it was in domain (out of domain, judged out of fold, it goes to review whatever its score).',
    folds: new Set(runs[0].folds).size,
    seeds: runs.map((r) => r.seed),
    cells: runs[0].ids.length,
    blasts: blastIds.size,
    calibration,
    ece,
    threshold,
    reviewLow,
    reviewHigh,
    guarantee: {
      alpha: options.alpha,
      confidence: options.confidence,
      blasts: edge.blasts,
      caughtOutOfDomain: caught,
      blastsBelowEdge: edge.blastsBelow,
      attained: edge.attained,
      achievedBound: edge.achievedBound,
      conformalBound: edge.conformalBound,
      marginLogit: edge.marginLogit,
      toleranceFactor: Number.isFinite(edge.toleranceFactor) ? edge.toleranceFactor : null,
      binding: edge.binding,
      blastsNeeded: blastsNeeded(options.alpha, options.confidence),
    },
    outOfFold,
    maxFlaggedShare: options.maxFlaggedShare,
    worthHaving: outOfFold.flaggedShare.mean <= options.maxFlaggedShare,
  };
}

/**
 * Each blast's lowest calibrated score over the seeds; with `skipOutOfDomain`, only over the seeds in which
 * it was in domain (a blast out of domain in every seed is then absent).
 */
function lowestBlastScores(
  runs: OofScores[],
  calibrate: (p: number) => number,
  skipOutOfDomain: boolean,
): Map<string, number> {
  const lowest = new Map<string, number>();
  for (const run of runs) {
    run.ids.forEach((id, i) => {
      if (run.labels[i] !== 1 || (skipOutOfDomain && run.outOfDomain?.[i])) return;
      lowest.set(id, Math.min(calibrate(run.probabilities[i]), lowest.get(id) ?? Infinity));
    });
  }
  return lowest;
}

function figuresOf(
  labels: Array<0 | 1>,
  probabilities: number[],
  outOfDomain: boolean[] | undefined,
  threshold: number,
  reviewLow: number,
): Record<keyof OofFigures, number> {
  const metrics = computeMetrics(labels, probabilities, threshold);
  const ood = (i: number) => outOfDomain?.[i] === true;
  const review = probabilities.map((p, i) => (p >= reviewLow && p < threshold) || ood(i));
  const flagged = probabilities.map((p, i) => p >= threshold || review[i]);
  const blasts = labels.filter((l) => l === 1).length;
  const share = (marks: boolean[]) => marks.filter(Boolean).length / labels.length;
  return {
    rocAuc: metrics.rocAuc,
    flaggedShare: share(flagged),
    reviewRate: share(review),
    outOfDomainRate: share(labels.map((_, i) => ood(i))),
    allOrReviewSensitivity: blasts ? labels.filter((l, i) => l === 1 && flagged[i]).length / blasts : NaN,
    sensitivity: metrics.sensitivity,
    specificity: metrics.specificity,
    weightedF1: metrics.weightedF1,
  };
}
