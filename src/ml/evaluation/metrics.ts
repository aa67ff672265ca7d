import { badInput } from '../../errors';

/**
 * Binary classification metrics, ALL (label 1) being the positive class. A rate whose denominator is 0
 * (sensitivity with no ALL cells, precision with no ALL calls, AUC with one class) is NaN, never a
 * made-up 0 or 1: it means "not measurable on this set", and JSON.stringify turns it into null.
 */
export interface BinaryMetrics {
  n: number;
  accuracy: number;
  balancedAccuracy: number;
  precision: number;
  /** Same as sensitivity. */
  recall: number;
  sensitivity: number;
  specificity: number;
  /** F1 of the ALL class: 2tp / (2tp + fp + fn). */
  f1: number;
  /** Support-weighted mean of both classes' F1, the C-NMC 2019 challenge metric. */
  weightedF1: number;
  rocAuc: number;
  /** Average precision: the step-wise area under the precision-recall curve (no interpolation). */
  prAuc: number;
  brier: number;
  /** Expected calibration error over 10 equal-width probability bins. */
  ece: number;
  confusion: { tp: number; fp: number; tn: number; fn: number };
  /** Accuracy of always answering the more frequent label: the figure to beat. */
  majorityBaselineAccuracy: number;
  threshold: number;
}

function checkInputs(labels: number[], probabilities: number[]): void {
  if (labels.length !== probabilities.length) {
    throw badInput(`Got ${labels.length} labels but ${probabilities.length} probabilities.`);
  }
  labels.forEach((label, i) => {
    if (label !== 0 && label !== 1) throw badInput(`Label ${i} is ${label}; labels must be 0 or 1.`);
  });
  probabilities.forEach((p, i) => {
    if (!(p >= 0 && p <= 1)) throw badInput(`Probability ${i} is ${p}; probabilities must be in [0, 1].`);
  });
}

const ratio = (numerator: number, denominator: number) => (denominator === 0 ? NaN : numerator / denominator);

/** Indices sorted by descending probability, so thresholds can be swept from the top. */
function byDescendingProbability(probabilities: number[]): number[] {
  return probabilities.map((_, i) => i).sort((a, b) => probabilities[b] - probabilities[a]);
}

export interface RocPoint {
  fpr: number;
  tpr: number;
  threshold: number;
}

/**
 * The ROC curve: one point per distinct probability t (calling ALL when p >= t), from the strictest
 * threshold down, preceded by (0, 0) at threshold Infinity. Tied probabilities make one diagonal step.
 * Empty when either class is missing, since one of the rates is then undefined.
 */
export function rocCurve(labels: number[], probabilities: number[]): RocPoint[] {
  checkInputs(labels, probabilities);
  const positives = labels.filter((label) => label === 1).length;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) return [];
  const points: RocPoint[] = [{ fpr: 0, tpr: 0, threshold: Infinity }];
  let tp = 0;
  let fp = 0;
  const order = byDescendingProbability(probabilities);
  for (let i = 0; i < order.length; i++) {
    if (labels[order[i]] === 1) tp++;
    else fp++;
    const threshold = probabilities[order[i]];
    if (i + 1 < order.length && probabilities[order[i + 1]] === threshold) continue;
    points.push({ fpr: fp / negatives, tpr: tp / positives, threshold });
  }
  return points;
}

export interface PrPoint {
  recall: number;
  precision: number;
  threshold: number;
}

/**
 * The precision-recall curve, one point per distinct probability from the strictest threshold down,
 * preceded by (recall 0, precision 1) at threshold Infinity as in scikit-learn. Empty when there is no
 * ALL cell, since recall is then undefined.
 */
export function prCurve(labels: number[], probabilities: number[]): PrPoint[] {
  checkInputs(labels, probabilities);
  const positives = labels.filter((label) => label === 1).length;
  if (positives === 0) return [];
  const points: PrPoint[] = [{ recall: 0, precision: 1, threshold: Infinity }];
  let tp = 0;
  const order = byDescendingProbability(probabilities);
  for (let i = 0; i < order.length; i++) {
    if (labels[order[i]] === 1) tp++;
    const threshold = probabilities[order[i]];
    if (i + 1 < order.length && probabilities[order[i + 1]] === threshold) continue;
    points.push({ recall: tp / positives, precision: tp / (i + 1), threshold });
  }
  return points;
}

/** A curve point as cards and the API store it: JSON has no Infinity, so the first point's threshold is null. */
export interface CurvePoint {
  x: number;
  y: number;
  threshold: number | null;
}

const finiteOrNull = (threshold: number) => (Number.isFinite(threshold) ? threshold : null);

/** ROC (x: false positive rate, y: true positive rate) and precision-recall (x: recall, y: precision) points. */
export function curvePoints(
  labels: number[],
  probabilities: number[],
): { roc: CurvePoint[]; pr: CurvePoint[] } {
  return {
    roc: rocCurve(labels, probabilities).map((p) => ({
      x: p.fpr,
      y: p.tpr,
      threshold: finiteOrNull(p.threshold),
    })),
    pr: prCurve(labels, probabilities).map((p) => ({
      x: p.recall,
      y: p.precision,
      threshold: finiteOrNull(p.threshold),
    })),
  };
}

/** Trapezoidal area under the ROC curve: equals the probability that a random ALL cell outscores a random normal one, ties counting one half. */
function areaUnderRoc(points: RocPoint[]): number {
  if (points.length === 0) return NaN;
  let area = 0;
  for (let i = 1; i < points.length; i++) {
    area += ((points[i].fpr - points[i - 1].fpr) * (points[i].tpr + points[i - 1].tpr)) / 2;
  }
  return area;
}

function averagePrecision(points: PrPoint[]): number {
  if (points.length === 0) return NaN;
  let area = 0;
  for (let i = 1; i < points.length; i++)
    area += (points[i].recall - points[i - 1].recall) * points[i].precision;
  return area;
}

const CALIBRATION_BINS = 10;

/**
 * Expected calibration error: probabilities fall into 10 bins [0, 0.1), ..., [0.9, 1.0]; each bin
 * contributes |mean probability - fraction of ALL| weighted by its share of the cells.
 */
function expectedCalibrationError(labels: number[], probabilities: number[]): number {
  if (labels.length === 0) return NaN;
  const sums = Array.from({ length: CALIBRATION_BINS }, () => ({ n: 0, probability: 0, positives: 0 }));
  probabilities.forEach((p, i) => {
    const bin = sums[Math.min(CALIBRATION_BINS - 1, Math.floor(p * CALIBRATION_BINS))];
    bin.n++;
    bin.probability += p;
    bin.positives += labels[i];
  });
  return sums.reduce(
    (ece, bin) => ece + (bin.n === 0 ? 0 : Math.abs(bin.probability - bin.positives) / labels.length),
    0,
  );
}

/**
 * All metrics for calling ALL when probability >= threshold. NaN marks a metric the set cannot measure
 * (see BinaryMetrics); an empty set gives n = 0 and NaN everywhere else.
 */
export function computeMetrics(labels: number[], probabilities: number[], threshold: number): BinaryMetrics {
  checkInputs(labels, probabilities);
  if (!Number.isFinite(threshold)) throw badInput(`The threshold must be a finite number; got ${threshold}.`);
  const confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  labels.forEach((label, i) => {
    const calledAll = probabilities[i] >= threshold;
    if (label === 1) {
      if (calledAll) confusion.tp++;
      else confusion.fn++;
    } else if (calledAll) confusion.fp++;
    else confusion.tn++;
  });
  const { tp, fp, tn, fn } = confusion;
  const n = labels.length;
  const positives = tp + fn;
  const negatives = tn + fp;
  const sensitivity = ratio(tp, positives);
  const specificity = ratio(tn, negatives);
  const f1 = ratio(2 * tp, 2 * tp + fp + fn);
  const f1Normal = ratio(2 * tn, 2 * tn + fn + fp);
  // A class absent from the labels weighs 0, so its undefined F1 must not poison the mean.
  const weightedF1 =
    n === 0 ? NaN : ((positives ? f1 * positives : 0) + (negatives ? f1Normal * negatives : 0)) / n;
  return {
    n,
    accuracy: ratio(tp + tn, n),
    balancedAccuracy: (sensitivity + specificity) / 2,
    precision: ratio(tp, tp + fp),
    recall: sensitivity,
    sensitivity,
    specificity,
    f1,
    weightedF1,
    rocAuc: areaUnderRoc(rocCurve(labels, probabilities)),
    prAuc: averagePrecision(prCurve(labels, probabilities)),
    brier: ratio(
      labels.reduce((sum, label, i) => sum + (probabilities[i] - label) ** 2, 0),
      n,
    ),
    ece: expectedCalibrationError(labels, probabilities),
    confusion,
    majorityBaselineAccuracy: ratio(Math.max(positives, negatives), n),
    threshold,
  };
}

const TIE_TOLERANCE = 1e-12;

/**
 * The decision threshold that maximises balanced accuracy (equivalently Youden's J = sensitivity +
 * specificity - 1) on a validation set. Balanced accuracy, not accuracy, so the 2:1 ALL:normal ratio
 * of C-NMC cannot pay for calling everything ALL.
 *
 * Every threshold between two neighbouring distinct probabilities gives the same calls, so each
 * candidate is an interval (lower, upper]; the threshold returned for it is 0.5 when 0.5 lies inside,
 * otherwise the interval's midpoint, which leaves the same margin on both sides. Among equally good
 * intervals the one whose threshold is closer to 0.5 wins. With a single class in `labels` balanced
 * accuracy is undefined and 0.5 is returned.
 */
export function chooseThreshold(labels: number[], probabilities: number[]): number {
  checkInputs(labels, probabilities);
  const positives = labels.filter((label) => label === 1).length;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) return 0.5;
  let best = { score: -Infinity, threshold: 0.5 };
  // Thresholds in (lower, upper] all give the same calls; -Infinity and Infinity mark open ends.
  const consider = (tp: number, fp: number, lower: number, upper: number) => {
    let threshold: number;
    if (lower < 0.5 && 0.5 <= upper) threshold = 0.5;
    else if (upper === Infinity) {
      if (lower >= 1) return; // "call nothing ALL" is out of reach when some cell scored exactly 1
      threshold = (lower + 1) / 2;
    } else if (lower === -Infinity) threshold = upper / 2;
    else threshold = (lower + upper) / 2;
    const score = tp / positives + (negatives - fp) / negatives;
    const better = score > best.score + TIE_TOLERANCE;
    const tie = Math.abs(score - best.score) <= TIE_TOLERANCE;
    if (better || (tie && Math.abs(threshold - 0.5) < Math.abs(best.threshold - 0.5)))
      best = { score, threshold };
  };
  const order = byDescendingProbability(probabilities);
  consider(0, 0, probabilities[order[0]], Infinity);
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < order.length; i++) {
    if (labels[order[i]] === 1) tp++;
    else fp++;
    const upper = probabilities[order[i]];
    const next = i + 1 < order.length ? probabilities[order[i + 1]] : -Infinity;
    if (next === upper) continue;
    consider(tp, fp, next, upper);
  }
  return best.threshold;
}

/**
 * The human-review band [low, high): a prediction with low <= p < high is shown to a reviewer.
 *
 * The rule: a blast must never be silently called normal, so `low` is the lowest probability any ALL
 * cell (label 1) received on validation, but no higher than the threshold; every validation ALL cell is
 * then either called ALL or sent to review, and no band that starts higher achieves this. `high` is the
 * threshold itself: cells called ALL already go to a hematologist, since blasts are never finalised
 * without one, so widening the band above the threshold would add work and no safety. The band is
 * therefore the narrowest with low <= threshold <= high that catches every validation ALL cell; it is
 * empty (low = high) when every ALL cell already scored at or above the threshold, and with no ALL cell
 * in the set the rule has nothing to go by and the band is empty too.
 */
export function chooseReviewBand(
  labels: number[],
  probabilities: number[],
  threshold: number,
): { low: number; high: number } {
  checkInputs(labels, probabilities);
  if (!(threshold >= 0 && threshold <= 1))
    throw badInput(`The threshold must be in [0, 1]; got ${threshold}.`);
  let lowestAll = Infinity;
  labels.forEach((label, i) => {
    if (label === 1 && probabilities[i] < lowestAll) lowestAll = probabilities[i];
  });
  return { low: Math.min(threshold, lowestAll), high: threshold };
}
