import { applyCalibration, crossFittedCalibration, fitPlatt } from '../../../src/ml/decisions/calibration';
import { logit, sigmoid } from '../../../src/ml/features/logistic';
import { computeMetrics } from '../../../src/ml/evaluation/metrics';
import { mulberry32 } from '../../../src/ml/rng';

/** Scores of an over-confident model: the true log-odds z, reported as sigmoid(3 z + 1). */
function overConfident(n: number, seed: number) {
  const random = mulberry32(seed);
  const labels: Array<0 | 1> = [];
  const scores: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = (random() - 0.5) * 4;
    labels.push(random() < sigmoid(z) ? 1 : 0);
    scores.push(sigmoid(3 * z + 1));
  }
  return { labels, scores };
}

describe('Platt calibration', () => {
  it('recovers the inverse of a known distortion and brings the calibration error down', () => {
    const { labels, scores } = overConfident(4000, 7);
    const fit = fitPlatt(labels, scores)!;
    expect(fit.method).toBe('platt');
    expect(fit.slope).toBeCloseTo(1 / 3, 1);
    expect(fit.intercept).toBeCloseTo(-1 / 3, 1);
    const calibrated = scores.map((p) => applyCalibration(fit, p));
    const before = computeMetrics(labels, scores, 0.5).ece;
    const after = computeMetrics(labels, calibrated, 0.5).ece;
    expect(before).toBeGreaterThan(0.1);
    expect(after).toBeLessThan(0.05);
  });

  it('is monotone: it changes no ranking', () => {
    const fit = { method: 'platt' as const, slope: 0.4, intercept: -0.3 };
    const ps = [0.01, 0.2, 0.5, 0.7, 0.99];
    const out = ps.map((p) => applyCalibration(fit, p));
    for (let i = 1; i < out.length; i++) expect(out[i]).toBeGreaterThan(out[i - 1]);
    expect(applyCalibration(null, 0.3)).toBe(0.3);
    expect(logit(applyCalibration(fit, 0.7))).toBeCloseTo(0.4 * logit(0.7) - 0.3, 9);
  });

  it('refuses to calibrate one class or scores that rank blasts below normals', () => {
    expect(fitPlatt([1, 1, 1], [0.2, 0.5, 0.9])).toBeNull();
    const labels: Array<0 | 1> = [0, 0, 0, 0, 1, 1, 1, 1];
    expect(fitPlatt(labels, [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1])).toBeNull();
  });

  it('cross-fits: each fold is calibrated by a fit that never saw it', () => {
    const { labels, scores } = overConfident(400, 3);
    const groups = labels.map((_, i) => i % 4);
    const crossed = crossFittedCalibration(labels, scores, groups);
    const rest = labels.map((_, i) => i).filter((i) => groups[i] !== 0);
    const fit = fitPlatt(
      rest.map((i) => labels[i]),
      rest.map((i) => scores[i]),
    );
    expect(crossed[0]).toBeCloseTo(applyCalibration(fit, scores[0]), 12);
    expect(crossed[0]).not.toBeCloseTo(applyCalibration(fitPlatt(labels, scores), scores[0]), 12);
  });
});
