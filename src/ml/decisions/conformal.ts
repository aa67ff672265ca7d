import { badInput } from '../../errors';
import { logit, sigmoid } from '../features/logistic';

/**
 * Finite-sample bounds on the share of blasts that fall below a review band's lower edge.
 *
 * The question a clinician asks is "of the blasts this model will see, how many can come back NORMAL
 * without a review?". We only ever see n blasts scored out of fold, and k of them below the edge; the
 * true miss rate can be larger than k/n. Clopper-Pearson gives the exact one-sided upper bound: with
 * confidence 1 - delta, the miss rate is at most the p where P(Binomial(n, p) <= k) = delta. With k = 0
 * that is 1 - delta^(1/n): 9.2% for n = 31 at 95%. To promise 2% at 95% with no miss at all takes
 * n >= log(0.05) / log(0.98) = 149 blasts of distinct subjects' kind, so on a small sample the bound
 * achieved is recorded beside the one asked for, never rounded up to it.
 */

/** log of n choose k. */
function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/** P(X <= k) for X ~ Binomial(n, p). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p <= 0) return 1;
  if (p >= 1) return 0;
  let sum = 0;
  for (let i = 0; i <= k; i++) sum += Math.exp(logChoose(n, i) + i * Math.log(p) + (n - i) * Math.log1p(-p));
  return Math.min(1, sum);
}

/**
 * The one-sided Clopper-Pearson upper bound on a proportion after k events in n trials: the largest p
 * still consistent, at the given confidence, with seeing as few as k. 1 when k = n.
 */
export function clopperPearsonUpper(k: number, n: number, confidence: number): number {
  if (!Number.isInteger(n) || n < 1) throw badInput(`n must be a positive integer; got ${n}.`);
  if (!Number.isInteger(k) || k < 0 || k > n) throw badInput(`k must be an integer from 0 to n; got ${k}.`);
  if (!(confidence > 0 && confidence < 1)) throw badInput(`confidence must be in (0, 1); got ${confidence}.`);
  if (k === n) return 1;
  const delta = 1 - confidence;
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (binomialCdf(k, n, mid) > delta) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** The fewest blasts, all above the edge, for the Clopper-Pearson bound to reach alpha at this confidence. */
export function blastsNeeded(alpha: number, confidence: number): number {
  return Math.ceil(Math.log(1 - confidence) / Math.log(1 - alpha));
}

/** The standard normal CDF (Abramowitz and Stegun 7.1.26, error below 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** The standard normal quantile, by bisection on normalCdf. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw badInput(`A normal quantile needs p in (0, 1); got ${p}.`);
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * The factor k of a one-sided normal tolerance limit mean - k * sd that lies below a share `coverage` of
 * the population with the given confidence, from n values (Natrella's approximation, within about 1% of
 * the exact noncentral-t factor for n >= 10). NaN when n is too small for it.
 */
export function toleranceFactor(n: number, coverage: number, confidence: number): number {
  const zp = normalQuantile(coverage);
  const zg = normalQuantile(confidence);
  const a = 1 - (zg * zg) / (2 * (n - 1));
  const b = zp * zp - (zg * zg) / n;
  if (!(n > 2 && a > 0 && zp * zp - a * b >= 0)) return NaN;
  return (zp + Math.sqrt(zp * zp - a * b)) / a;
}

export interface LowerEdge {
  /** The band's lower edge, in the same (probability) scale as the scores. */
  edge: number;
  /** Blasts of the calibration set strictly below the edge. */
  blastsBelow: number;
  blasts: number;
  /** Whether the bound asked for (alpha at confidence) is achieved with these blasts. */
  attained: boolean;
  /** The Clopper-Pearson upper bound actually achieved on the share of blasts below the edge. */
  achievedBound: number;
  /**
   * The split-conformal guarantee, in expectation over calibration sets: a new exchangeable blast falls
   * below the (k+1)-th lowest of n with probability at most (k + 1) / (n + 1).
   */
  conformalBound: number;
  /** How far (in log-odds) the edge sits below the lowest blast kept above it; 0 when the bound was attained. */
  marginLogit: number;
  /**
   * When the bound is out of reach: the normal tolerance factor k used (mean - k sd of the blasts'
   * log-odds lies below 1 - alpha of blasts with the stated confidence, if their log-odds are normal); NaN
   * when unused.
   */
  toleranceFactor: number;
  /** What set the edge: the Clopper-Pearson rank, the normal tolerance limit or the lower-tail spacing. */
  binding: 'clopper-pearson' | 'tolerance' | 'spacing';
}

/**
 * The lower edge of the review band from the blasts' out-of-fold scores (probabilities).
 *
 * If some number k of blasts below the edge still keeps the Clopper-Pearson bound at or under alpha, the
 * edge is the (k+1)-th lowest blast score, taking the largest such k (the narrowest band that keeps the
 * promise). Otherwise the promise is out of reach with this n: no blast is left below the edge, and the
 * edge goes further down, to the lower of (a) one typical spacing of the lowest blasts' log-odds below the
 * lowest (the mean gap between the `tail` lowest: where the next, unseen, lowest blast is likely to land)
 * and (b) the one-sided normal tolerance limit of the blasts' log-odds, mean - k sd, which lies below
 * 1 - alpha of blasts at the stated confidence if their log-odds are normal: the promise, under that
 * assumption, that the order statistics of so few blasts cannot make. The bound achieved without the
 * assumption is recorded either way.
 *
 * `caught` blasts were sent to review whatever their score (out of domain, judged out of fold): they count
 * among the n blasts the bound is on, never below the edge, and take no part in placing it.
 */
export function conformalLowerEdge(
  blastScores: number[],
  options: { alpha: number; confidence: number; tail?: number; caught?: number },
): LowerEdge {
  const caught = options.caught ?? 0;
  if (!(Number.isInteger(caught) && caught >= 0))
    throw badInput(`caught must be a whole number of blasts; got ${caught}.`);
  const n = blastScores.length + caught;
  if (blastScores.length === 0)
    throw badInput('The review band needs at least one blast scored out of fold and in domain.');
  if (!(options.alpha > 0 && options.alpha < 1))
    throw badInput(`alpha must be in (0, 1); got ${options.alpha}.`);
  blastScores.forEach((p, i) => {
    if (!(p >= 0 && p <= 1)) throw badInput(`Blast score ${i} is ${p}; scores must be in [0, 1].`);
  });
  const sorted = [...blastScores].sort((a, b) => a - b);
  let k = -1;
  while (k + 1 < sorted.length && clopperPearsonUpper(k + 1, n, options.confidence) <= options.alpha) k++;
  if (k >= 0) {
    // Ties at the edge count as above it (the band is [low, high)), so step over equal scores.
    let below = k;
    while (below > 0 && sorted[below - 1] === sorted[below]) below--;
    return {
      edge: sorted[below],
      blastsBelow: below,
      blasts: n,
      attained: true,
      achievedBound: clopperPearsonUpper(below, n, options.confidence),
      conformalBound: (below + 1) / (n + 1),
      marginLogit: 0,
      toleranceFactor: NaN,
      binding: 'clopper-pearson',
    };
  }
  // The margin comes from the blasts that placed it (the caught ones have no say in where the tail lies).
  const logits = sorted.map(logit);
  const m = logits.length;
  const tail = Math.min(Math.max(2, options.tail ?? 5), m);
  const spacing = m >= 2 ? (logits[tail - 1] - logits[0]) / (tail - 1) : 1;
  const spacingEdge = logits[0] - spacing;
  const factor = toleranceFactor(m, 1 - options.alpha, options.confidence);
  const mean = logits.reduce((a, b) => a + b, 0) / m;
  const sd = Math.sqrt(logits.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(1, m - 1));
  const toleranceEdge = Number.isFinite(factor) ? mean - factor * sd : Infinity;
  const edgeLogit = Math.min(spacingEdge, toleranceEdge);
  return {
    edge: sigmoid(edgeLogit),
    blastsBelow: 0,
    blasts: n,
    attained: false,
    achievedBound: clopperPearsonUpper(0, n, options.confidence),
    conformalBound: 1 / (n + 1),
    marginLogit: logits[0] - edgeLogit,
    toleranceFactor: factor,
    binding: toleranceEdge < spacingEdge ? 'tolerance' : 'spacing',
  };
}
