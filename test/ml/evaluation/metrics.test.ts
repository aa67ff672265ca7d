import { LymphoscopeError } from '../../../src/errors';
import {
  chooseReviewBand,
  chooseThreshold,
  computeMetrics,
  prCurve,
  rocCurve,
} from '../../../src/ml/evaluation/metrics';

/**
 * Hand-computed case: 6 ALL (1), 4 normal (0), threshold 0.5.
 *   p:      0.9 0.8 0.7 0.6 0.4 0.3 | 0.65 0.45 0.2 0.1
 *   label:  1   1   1   1   1   1   | 0    0    0   0
 *   called: A   A   A   A   n   n   | A    n    n   n
 * tp 4, fn 2, fp 1, tn 3.
 */
const labels = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
const probs = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.65, 0.45, 0.2, 0.1];

describe('computeMetrics', () => {
  const m = computeMetrics(labels, probs, 0.5);

  it('counts the confusion matrix and the rates', () => {
    expect(m.confusion).toEqual({ tp: 4, fp: 1, tn: 3, fn: 2 });
    expect(m.n).toBe(10);
    expect(m.accuracy).toBeCloseTo(0.7, 12);
    expect(m.sensitivity).toBeCloseTo(4 / 6, 12);
    expect(m.recall).toBe(m.sensitivity);
    expect(m.specificity).toBeCloseTo(3 / 4, 12);
    expect(m.balancedAccuracy).toBeCloseTo((4 / 6 + 3 / 4) / 2, 12);
    expect(m.precision).toBeCloseTo(4 / 5, 12);
    expect(m.majorityBaselineAccuracy).toBeCloseTo(0.6, 12);
    expect(m.threshold).toBe(0.5);
  });

  it('computes F1 for ALL and the support-weighted F1 of both classes', () => {
    const f1All = (2 * 4) / (2 * 4 + 1 + 2); // 8/11
    const f1Normal = (2 * 3) / (2 * 3 + 2 + 1); // 6/9
    expect(m.f1).toBeCloseTo(f1All, 12);
    expect(m.weightedF1).toBeCloseTo((6 * f1All + 4 * f1Normal) / 10, 12);
  });

  it('computes ROC AUC as the chance an ALL cell outscores a normal one', () => {
    // Pairs (ALL, normal) where ALL scores higher: 0.9,0.8,0.7 beat all 4; 0.6 beats 3; 0.4 beats 2; 0.3 beats 2.
    expect(m.rocAuc).toBeCloseTo((4 + 4 + 4 + 3 + 2 + 2) / 24, 12);
  });

  it('counts ties as half in the AUC', () => {
    expect(computeMetrics([1, 0], [0.5, 0.5], 0.5).rocAuc).toBe(0.5);
    // ALL: 0.8, 0.5; normal: 0.5, 0.2 -> wins: (0.8>0.5) (0.8>0.2) (0.5=0.5: half) (0.5>0.2) = 3.5 of 4
    expect(computeMetrics([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.2], 0.5).rocAuc).toBeCloseTo(3.5 / 4, 12);
  });

  it('computes average precision, Brier score and calibration error', () => {
    // Ranked: 0.9 A, 0.8 A, 0.7 A, 0.65 n, 0.6 A, 0.45 n, 0.4 A, 0.3 A, 0.2 n, 0.1 n
    // AP = sum over ALL hits of precision at that rank / 6.
    const ap = (1 / 1 + 2 / 2 + 3 / 3 + 4 / 5 + 5 / 7 + 6 / 8) / 6;
    expect(m.prAuc).toBeCloseTo(ap, 12);
    const brier = probs.reduce((s, p, i) => s + (p - labels[i]) ** 2, 0) / 10;
    expect(m.brier).toBeCloseTo(brier, 12);
    // Bins: [0.1) n: |0.1 - 0|; [0.2) n: 0.2; [0.3) A: 0.7; [0.4) {0.4 A, 0.45 n}: 2 x |0.425 - 0.5|;
    // [0.6) {0.6 A, 0.65 n}: 2 x |0.625 - 0.5|; [0.7) A: 0.3; [0.8) A: 0.2; [0.9) A: 0.1.
    const ece = (0.1 + 0.2 + 0.7 + 2 * 0.075 + 2 * 0.125 + 0.3 + 0.2 + 0.1) / 10;
    expect(m.ece).toBeCloseTo(ece, 12);
  });

  it('is perfect for a perfect classifier and calls ALL at p >= threshold exactly', () => {
    const perfect = computeMetrics([1, 1, 0], [0.7, 0.5, 0.49], 0.5);
    expect(perfect.confusion).toEqual({ tp: 2, fp: 0, tn: 1, fn: 0 });
    expect(perfect.accuracy).toBe(1);
    expect(perfect.weightedF1).toBe(1);
    expect(perfect.rocAuc).toBe(1);
    expect(perfect.prAuc).toBe(1);
  });

  it('returns NaN for what a one-class set cannot measure, without crashing', () => {
    const onlyAll = computeMetrics([1, 1, 1], [0.9, 0.4, 0.6], 0.5);
    expect(onlyAll.sensitivity).toBeCloseTo(2 / 3, 12);
    expect(onlyAll.specificity).toBeNaN();
    expect(onlyAll.balancedAccuracy).toBeNaN();
    expect(onlyAll.rocAuc).toBeNaN();
    expect(onlyAll.prAuc).toBe(1); // every cell is ALL, so precision is 1 at every recall
    expect(onlyAll.weightedF1).toBeCloseTo(0.8, 12); // only the ALL class has support: F1 = 4/5
    expect(onlyAll.majorityBaselineAccuracy).toBe(1);

    const onlyNormal = computeMetrics([0, 0], [0.1, 0.2], 0.5);
    expect(onlyNormal.sensitivity).toBeNaN();
    expect(onlyNormal.precision).toBeNaN(); // nothing called ALL
    expect(onlyNormal.f1).toBeNaN();
    expect(onlyNormal.prAuc).toBeNaN();
    expect(onlyNormal.specificity).toBe(1);
    expect(onlyNormal.weightedF1).toBe(1);

    const empty = computeMetrics([], [], 0.5);
    expect(empty.n).toBe(0);
    expect(empty.accuracy).toBeNaN();
    expect(empty.brier).toBeNaN();
    expect(empty.ece).toBeNaN();
    expect(JSON.parse(JSON.stringify(empty)).accuracy).toBeNull();
  });

  it('rejects mismatched lengths, bad labels and probabilities outside [0, 1]', () => {
    expect(() => computeMetrics([1, 0], [0.5], 0.5)).toThrow(LymphoscopeError);
    expect(() => computeMetrics([2], [0.5], 0.5)).toThrow(/labels must be 0 or 1/);
    expect(() => computeMetrics([1], [1.2], 0.5)).toThrow(/in \[0, 1\]/);
    expect(() => computeMetrics([1], [NaN], 0.5)).toThrow(LymphoscopeError);
  });
});

describe('rocCurve and prCurve', () => {
  it('step through distinct thresholds from the top, tied scores making one step', () => {
    const roc = rocCurve([1, 0, 1, 0], [0.8, 0.8, 0.6, 0.1]);
    expect(roc).toEqual([
      { fpr: 0, tpr: 0, threshold: Infinity },
      { fpr: 0.5, tpr: 0.5, threshold: 0.8 },
      { fpr: 0.5, tpr: 1, threshold: 0.6 },
      { fpr: 1, tpr: 1, threshold: 0.1 },
    ]);
    expect(prCurve([1, 0, 1, 0], [0.8, 0.8, 0.6, 0.1])).toEqual([
      { recall: 0, precision: 1, threshold: Infinity },
      { recall: 0.5, precision: 0.5, threshold: 0.8 },
      { recall: 1, precision: 2 / 3, threshold: 0.6 },
      { recall: 1, precision: 0.5, threshold: 0.1 },
    ]);
  });

  it('are empty when the set cannot define them', () => {
    expect(rocCurve([1, 1], [0.2, 0.3])).toEqual([]);
    expect(prCurve([0, 0], [0.2, 0.3])).toEqual([]);
    expect(rocCurve([], [])).toEqual([]);
  });
});

describe('chooseThreshold', () => {
  it('maximises balanced accuracy, not accuracy, on an imbalanced set', () => {
    // 8 ALL at 0.9 and 2 at 0.55; normal cells at 0.6 and 0.3. Calling everything above 0.3 ALL is the
    // most accurate (11 of 12) but balanced accuracy is (1 + 0.5) / 2 = 0.75; cutting above 0.6 gets
    // 10 of 12 right with balanced accuracy (0.8 + 1) / 2 = 0.9, and wins.
    const l = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
    const p = [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.55, 0.55, 0.6, 0.3];
    const t = chooseThreshold(l, p);
    expect(t).toBeGreaterThan(0.6);
    expect(t).toBeLessThanOrEqual(0.9);
    expect(t).toBeCloseTo(0.75, 12); // midpoint of (0.6, 0.9]
    expect(computeMetrics(l, p, t).balancedAccuracy).toBeCloseTo(0.9, 12);
  });

  it('returns 0.5 when 0.5 is among the best thresholds', () => {
    expect(chooseThreshold([1, 1, 0, 0], [0.9, 0.7, 0.3, 0.1])).toBe(0.5);
  });

  it('breaks ties towards 0.5', () => {
    const l = [1, 0, 1, 0];
    const p = [0.95, 0.9, 0.2, 0.1];
    // Cut in (0.9, 0.95]: sensitivity 1/2, specificity 1; cut in (0.1, 0.2]: 1 and 1/2. Both score 0.75;
    // the second's midpoint, 0.15, is nearer 0.5 than the first's, 0.925.
    const t = chooseThreshold(l, p);
    expect(t).toBeCloseTo(0.15, 12);
  });

  it('falls back to 0.5 with one class, and handles scores of exactly 0 and 1', () => {
    expect(chooseThreshold([1, 1], [0.1, 0.2])).toBe(0.5);
    expect(chooseThreshold([0], [0.9])).toBe(0.5);
    const t = chooseThreshold([1, 0, 0], [1, 0, 0]);
    expect(t).toBe(0.5);
    const low = chooseThreshold([1, 1, 0], [0.2, 0.3, 0]);
    expect(low).toBeCloseTo(0.1, 12);
    expect(computeMetrics([1, 1, 0], [0.2, 0.3, 0], low).balancedAccuracy).toBe(1);
  });
});

describe('chooseReviewBand', () => {
  it('starts the band at the lowest-scored ALL cell, so every ALL is called or reviewed', () => {
    const band = chooseReviewBand(labels, probs, 0.5);
    expect(band).toEqual({ low: 0.3, high: 0.5 });
    labels.forEach((label, i) => {
      if (label !== 1) return;
      const calledAll = probs[i] >= 0.5;
      const reviewed = probs[i] >= band.low && probs[i] < band.high;
      expect(calledAll || reviewed).toBe(true);
    });
    // Narrowest: any higher `low` lets the ALL cell at 0.3 through as normal.
    expect(probs.filter((p, i) => labels[i] === 1 && p < band.low)).toEqual([]);
  });

  it('is empty when every ALL cell already scored at or above the threshold, or there is none', () => {
    expect(chooseReviewBand([1, 1, 0], [0.8, 0.6, 0.55], 0.6)).toEqual({ low: 0.6, high: 0.6 });
    expect(chooseReviewBand([0, 0], [0.8, 0.1], 0.4)).toEqual({ low: 0.4, high: 0.4 });
  });

  it('keeps low <= threshold <= high for any input', () => {
    for (let seed = 1; seed < 50; seed++) {
      const l = Array.from({ length: 20 }, (_, i) => ((i * seed) % 3 === 0 ? 0 : 1));
      const p = Array.from({ length: 20 }, (_, i) => ((i * 37 + seed * 11) % 100) / 100);
      const t = chooseThreshold(l, p);
      const band = chooseReviewBand(l, p, t);
      expect(band.low).toBeLessThanOrEqual(t);
      expect(band.high).toBeGreaterThanOrEqual(t);
      l.forEach((label, i) => {
        if (label === 1) expect(p[i] >= t || p[i] >= band.low).toBe(true);
      });
    }
  });
});
