import {
  binomialCdf,
  blastsNeeded,
  clopperPearsonUpper,
  conformalLowerEdge,
  normalCdf,
  normalQuantile,
  toleranceFactor,
} from '../../../src/ml/decisions/conformal';
import { logit } from '../../../src/ml/features/logistic';

describe('the normal distribution', () => {
  it('has the familiar quantiles', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.95996, 4);
    expect(normalQuantile(0.95)).toBeCloseTo(1.64485, 4);
    expect(normalQuantile(0.98)).toBeCloseTo(2.05375, 4);
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(toleranceFactor(2, 0.98, 0.95)).toBeNaN();
  });
});

describe('Clopper-Pearson', () => {
  it('matches the binomial distribution it inverts', () => {
    expect(binomialCdf(0, 10, 0.1)).toBeCloseTo(0.9 ** 10, 12);
    expect(binomialCdf(1, 3, 0.5)).toBeCloseTo(0.5, 12);
    expect(binomialCdf(3, 3, 0.2)).toBe(1);
    for (const [k, n] of [
      [0, 31],
      [2, 40],
      [5, 200],
    ]) {
      const upper = clopperPearsonUpper(k, n, 0.95);
      expect(binomialCdf(k, n, upper)).toBeCloseTo(0.05, 6);
    }
  });

  it('gives 1 - delta^(1/n) with no event: 9.2% for 31 blasts, and 149 blasts are needed for 2% at 95%', () => {
    expect(clopperPearsonUpper(0, 31, 0.95)).toBeCloseTo(1 - 0.05 ** (1 / 31), 8);
    expect(clopperPearsonUpper(0, 31, 0.95)).toBeCloseTo(0.0921, 3);
    expect(blastsNeeded(0.02, 0.95)).toBe(149);
    expect(clopperPearsonUpper(0, 149, 0.95)).toBeLessThanOrEqual(0.02);
    expect(clopperPearsonUpper(0, 148, 0.95)).toBeGreaterThan(0.02);
    expect(clopperPearsonUpper(4, 4, 0.95)).toBe(1);
  });

  it('refuses impossible counts', () => {
    expect(() => clopperPearsonUpper(3, 2, 0.95)).toThrow(/k must be/);
    expect(() => clopperPearsonUpper(0, 0, 0.95)).toThrow(/n must be/);
    expect(() => clopperPearsonUpper(0, 5, 1)).toThrow(/confidence/);
  });
});

describe('conformalLowerEdge', () => {
  const blasts = (n: number) => Array.from({ length: n }, (_, i) => 0.2 + (0.7 * i) / (n - 1));

  it('out of reach with 31 blasts: no blast below, the lower of a tail spacing and a normal tolerance limit, and the bound achieved', () => {
    const scores = blasts(31);
    const edge = conformalLowerEdge(scores, { alpha: 0.02, confidence: 0.95 });
    expect(edge.attained).toBe(false);
    expect(edge.blastsBelow).toBe(0);
    expect(edge.achievedBound).toBeCloseTo(0.0921, 3);
    expect(edge.conformalBound).toBeCloseTo(1 / 32, 12);
    expect(edge.edge).toBeLessThan(Math.min(...scores));
    const logits = [...scores].sort((a, b) => a - b).map(logit);
    const spacingEdge = logits[0] - (logits[4] - logits[0]) / 4;
    const mean = logits.reduce((a, b) => a + b, 0) / 31;
    const sd = Math.sqrt(logits.reduce((a, v) => a + (v - mean) ** 2, 0) / 30);
    // The exact one-sided factor for n = 31, 98% coverage, 95% confidence is 2.71 (noncentral t).
    expect(edge.toleranceFactor).toBeCloseTo(2.7, 1);
    const toleranceEdge = mean - edge.toleranceFactor * sd;
    expect(logit(edge.edge)).toBeCloseTo(Math.min(spacingEdge, toleranceEdge), 6);
    expect(edge.binding).toBe(toleranceEdge < spacingEdge ? 'tolerance' : 'spacing');
    expect(edge.marginLogit).toBeCloseTo(logits[0] - logit(edge.edge), 6);
  });

  it('takes the spacing when the blasts are tightly bunched at the bottom but one lies far below', () => {
    const scores = [0.05, ...Array.from({ length: 30 }, (_, i) => 0.8 + i * 0.005)];
    const edge = conformalLowerEdge(scores, { alpha: 0.02, confidence: 0.95 });
    expect(edge.edge).toBeLessThan(0.05);
  });

  it('with enough blasts keeps the bound with the narrowest band: k blasts below, the bound within alpha', () => {
    const scores = blasts(1000);
    const edge = conformalLowerEdge(scores, { alpha: 0.02, confidence: 0.95 });
    expect(edge.attained).toBe(true);
    expect(edge.blastsBelow).toBeGreaterThan(5);
    expect(edge.achievedBound).toBeLessThanOrEqual(0.02);
    expect(scores.filter((p) => p < edge.edge)).toHaveLength(edge.blastsBelow);
    // One more blast below the edge would break the bound.
    expect(clopperPearsonUpper(edge.blastsBelow + 1, 1000, 0.95)).toBeGreaterThan(0.02);
    expect(edge.marginLogit).toBe(0);
  });

  it('counts blasts caught out of domain towards the bound, but not towards where the edge lies', () => {
    const scores = blasts(30);
    const alone = conformalLowerEdge(scores, { alpha: 0.02, confidence: 0.95 });
    const withLow = conformalLowerEdge([0.001, ...scores], { alpha: 0.02, confidence: 0.95 });
    const caught = conformalLowerEdge(scores, { alpha: 0.02, confidence: 0.95, caught: 1 });
    // The caught blast's low score no longer drags the edge down...
    expect(withLow.edge).toBeLessThan(0.001);
    expect(caught.edge).toBeCloseTo(alone.edge, 12);
    // ...and the bound is on all 31 blasts, none of them missed.
    expect(caught.blasts).toBe(31);
    expect(caught.achievedBound).toBeCloseTo(withLow.achievedBound, 12);
    expect(caught.achievedBound).toBeLessThan(alone.achievedBound);
    expect(() => conformalLowerEdge(scores, { alpha: 0.02, confidence: 0.95, caught: -1 })).toThrow(/caught/);
  });

  it('refuses an empty or out-of-range set', () => {
    expect(() => conformalLowerEdge([], { alpha: 0.02, confidence: 0.95 })).toThrow(/at least one blast/);
    expect(() => conformalLowerEdge([1.2], { alpha: 0.02, confidence: 0.95 })).toThrow(/\[0, 1\]/);
  });
});
