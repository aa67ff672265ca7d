import { fitDecisions, type OofScores } from '../../../src/ml/decisions/rule';
import { conformalQuantile, fitDomainThreshold, heldOutDomainFlags } from '../../../src/ml/decisions/domain';
import { chooseThreshold } from '../../../src/ml/evaluation/metrics';
import { applyCalibration } from '../../../src/ml/decisions/calibration';
import { mulberry32 } from '../../../src/ml/rng';
import { sigmoid } from '../../../src/ml/features/logistic';

/** Out-of-fold scores of a model with some skill: blasts' log-odds ~ +1, normals' ~ -1, plus noise. */
function run(seed: number, n = 60): OofScores {
  const random = mulberry32(seed);
  const ids = Array.from({ length: n }, (_, i) => `cell${i}`);
  const labels = ids.map((_, i) => (i % 3 === 0 ? 0 : 1) as 0 | 1);
  return {
    seed,
    ids,
    labels,
    folds: ids.map((_, i) => i % 5),
    probabilities: labels.map((l) => sigmoid((l ? 1 : -1) + (random() - 0.5) * 4)),
  };
}

describe('fitDecisions', () => {
  it('puts the band below every blast of every seed, with the threshold fitted on calibrated pooled scores', () => {
    const runs = [run(1), run(2), run(3)];
    const d = fitDecisions(runs);
    const calibrated = runs.map((r) => r.probabilities.map((p) => applyCalibration(d.calibration, p)));
    expect(d.threshold).toBe(
      chooseThreshold(
        runs.flatMap((r) => r.labels),
        calibrated.flat(),
      ),
    );
    expect(d.reviewHigh).toBe(d.threshold);
    expect(d.reviewLow).toBeLessThan(d.reviewHigh);
    runs.forEach((r, s) =>
      r.labels.forEach((l, i) => {
        if (l === 1) expect(calibrated[s][i]).toBeGreaterThanOrEqual(d.reviewLow);
      }),
    );
    expect(d.outOfFold.allOrReviewSensitivity.mean).toBe(1);
    expect(d.outOfFold.allOrReviewSensitivity.n).toBe(3);
    expect(d.guarantee).toMatchObject({ alpha: 0.02, confidence: 0.95, blasts: 40, attained: false });
    expect(d.guarantee.achievedBound).toBeCloseTo(1 - 0.05 ** (1 / 40), 6);
    expect(d.seeds).toEqual([1, 2, 3]);
    expect(d.folds).toBe(5);
    expect(d.worthHaving).toBe(d.outOfFold.flaggedShare.mean <= 0.7);
  });

  it('holds the edge down by the lowest score any seed gave a blast', () => {
    const a = run(1);
    const b = { ...run(1), seed: 2, probabilities: [...run(1).probabilities] };
    const blast = a.labels.indexOf(1);
    b.probabilities[blast] = 0.001;
    const alone = fitDecisions([a]);
    const both = fitDecisions([a, b]);
    expect(both.reviewLow).toBeLessThan(alone.reviewLow);
    expect(applyCalibration(both.calibration, 0.001)).toBeGreaterThanOrEqual(both.reviewLow);
  });

  it('lets a blast out of domain (held out) leave the edge alone: it goes to review whatever its score', () => {
    const base = run(1);
    const blast = base.labels.indexOf(1);
    const low = { ...base, probabilities: base.probabilities.map((p, i) => (i === blast ? 0.001 : p)) };
    const flags = base.ids.map((_, i) => i === blast);
    const ignored = fitDecisions([low]);
    const caught = fitDecisions([{ ...low, outOfDomain: flags }]);
    expect(caught.reviewLow).toBeGreaterThan(ignored.reviewLow);
    expect(caught.guarantee.caughtOutOfDomain).toBe(1);
    expect(caught.guarantee.blasts).toBe(ignored.guarantee.blasts);
    // Every blast still comes back ALL or for review, the caught one through its out-of-domain flag...
    expect(caught.outOfFold.allOrReviewSensitivity.mean).toBe(1);
    expect(caught.outOfFold.outOfDomainRate.mean).toBeCloseTo(1 / base.ids.length, 12);
    // ...which it would not without it.
    const unflagged = fitDecisions([{ ...low, outOfDomain: base.ids.map(() => false) }]);
    expect(unflagged.reviewLow).toBe(ignored.reviewLow);
    // A blast out of domain in one seed only still holds the edge down through the other seed.
    const other = { ...low, seed: 2 };
    const oneSeed = fitDecisions([{ ...low, outOfDomain: flags }, other]);
    expect(oneSeed.reviewLow).toBe(fitDecisions([low, other]).reviewLow);
    expect(oneSeed.guarantee.caughtOutOfDomain).toBe(0);
  });

  it('reports the calibration error before and after, the latter cross-fitted', () => {
    const d = fitDecisions([run(5, 300)]);
    expect(d.calibration).not.toBeNull();
    expect(d.ece.before).toBeGreaterThan(0);
    expect(d.ece.after).toBeGreaterThan(0);
    expect(d.ece.after).toBeLessThan(0.15);
  });

  it('keeps Platt scaling only where it lowers the calibration error on folds it was not fitted on', () => {
    // Scores that are already probabilities: each cell is a blast with exactly its score's chance.
    const random = mulberry32(21);
    const n = 400;
    const probabilities = Array.from({ length: n }, () => 0.05 + 0.9 * random());
    const honest: OofScores = {
      seed: 1,
      ids: probabilities.map((_, i) => `cell${i}`),
      labels: probabilities.map((p) => (random() < p ? 1 : 0)),
      folds: probabilities.map((_, i) => i % 5),
      probabilities,
    };
    const d = fitDecisions([honest]);
    expect(d.ece.after).toBeGreaterThanOrEqual(d.ece.before);
    expect(d.calibration).toBeNull();
    // Over-confident scores of the same cells: there a fit on the other folds helps, and it serves.
    const sharp = { ...honest, probabilities: probabilities.map((p) => sigmoid(4 * Math.log(p / (1 - p)))) };
    const s = fitDecisions([sharp]);
    expect(s.ece.after).toBeLessThan(s.ece.before);
    expect(s.calibration!.slope).toBeLessThan(0.5);
  });

  it('refuses mismatched scores', () => {
    expect(() => fitDecisions([])).toThrow(/at least one seed/);
    expect(() => fitDecisions([{ ...run(1), folds: [0] }])).toThrow(/mismatched/);
    expect(() => fitDecisions([{ ...run(1), outOfDomain: [true] }])).toThrow(/mismatched/);
  });
});

describe('the out-of-domain threshold', () => {
  it('is the conformal quantile: a new exchangeable score exceeds it at most at the target rate', () => {
    const scores = Array.from({ length: 99 }, (_, i) => i + 1);
    expect(conformalQuantile(scores, 0.05)).toBe(95);
    expect(conformalQuantile([3, 1, 2], 0.05)).toBeGreaterThan(3);
  });

  it('measures its false-alarm rate on folds the threshold never saw', () => {
    const random = mulberry32(9);
    const folds = [0, 1, 2, 3, 4].map((fold) => ({
      seed: 1,
      fold,
      scores: Array.from({ length: 40 }, () => random() + (fold === 4 ? 0.5 : 0)),
    }));
    const { threshold, report } = fitDomainThreshold(folds, 0.05);
    expect(threshold).toBe(
      conformalQuantile(
        folds.flatMap((f) => f.scores),
        0.05,
      ),
    );
    // The shifted fold is judged against the others' threshold, so its alarms show.
    expect(report.outOfFoldFalseAlarmRate).toBeGreaterThan(0.1);
    expect(report.targetFalseAlarmRate).toBe(0.05);
    expect(report.n).toBe(200);
    // The flags the band's rule reads are the same judgement, cell by cell.
    const flags = heldOutDomainFlags(folds, 0.05);
    const others = folds.slice(0, 4).flatMap((f) => f.scores);
    expect(flags[4]).toEqual(folds[4].scores.map((v) => v > conformalQuantile(others, 0.05)));
    const judged = flags.flat() as boolean[];
    expect(report.outOfFoldFalseAlarmRate).toBeCloseTo(judged.filter(Boolean).length / judged.length, 12);
    expect(heldOutDomainFlags([folds[0]])).toEqual([null]);
  });
});
