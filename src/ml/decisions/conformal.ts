import { badInput } from '../../errors';
import { logit, sigmoid } from '../logistic';

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
}

/**
 * The lower edge of the review band from the blasts' out-of-fold scores (probabilities).
 *
 * If some number k of blasts below the edge still keeps the Clopper-Pearson bound at or under alpha, the
 * edge is the (k+1)-th lowest blast score, taking the largest such k (the narrowest band that keeps the
 * promise). Otherwise the promise is out of reach with this n: no blast is left below the edge, and the
 * edge goes a margin further down, one typical spacing of the lowest blasts' log-odds (the mean gap
 * between the `tail` lowest): where the next, unseen, lowest blast is likely to land. The bound achieved
 * is recorded either way.
 */
export function conformalLowerEdge(
  blastScores: number[],
  options: { alpha: number; confidence: number; tail?: number },
): LowerEdge {
  const n = blastScores.length;
  if (n === 0) throw badInput('The review band needs at least one blast scored out of fold.');
  if (!(options.alpha > 0 && options.alpha < 1))
    throw badInput(`alpha must be in (0, 1); got ${options.alpha}.`);
  blastScores.forEach((p, i) => {
    if (!(p >= 0 && p <= 1)) throw badInput(`Blast score ${i} is ${p}; scores must be in [0, 1].`);
  });
  const sorted = [...blastScores].sort((a, b) => a - b);
  let k = -1;
  while (k + 1 < n && clopperPearsonUpper(k + 1, n, options.confidence) <= options.alpha) k++;
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
    };
  }
  const logits = sorted.map(logit);
  const tail = Math.min(Math.max(2, options.tail ?? 5), n);
  const marginLogit = n >= 2 ? (logits[tail - 1] - logits[0]) / (tail - 1) : 1;
  return {
    edge: sigmoid(logits[0] - marginLogit),
    blastsBelow: 0,
    blasts: n,
    attained: false,
    achievedBound: clopperPearsonUpper(0, n, options.confidence),
    conformalBound: 1 / (n + 1),
    marginLogit,
  };
}
