import {
  binomialCdf,
  blastsNeeded,
  clopperPearsonUpper,
  conformalLowerEdge,
} from '../../../src/ml/decisions/conformal';
import { logit } from '../../../src/ml/logistic';

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

  it('out of reach with 31 blasts: no blast below, a margin of one lower-tail spacing, and the bound achieved', () => {
    const scores = blasts(31);
    const edge = conformalLowerEdge(scores, { alpha: 0.02, confidence: 0.95 });
    expect(edge.attained).toBe(false);
    expect(edge.blastsBelow).toBe(0);
    expect(edge.achievedBound).toBeCloseTo(0.0921, 3);
    expect(edge.conformalBound).toBeCloseTo(1 / 32, 12);
    expect(edge.edge).toBeLessThan(Math.min(...scores));
    const sorted = [...scores].sort((a, b) => a - b).map(logit);
    expect(edge.marginLogit).toBeCloseTo((sorted[4] - sorted[0]) / 4, 9);
    expect(logit(edge.edge)).toBeCloseTo(sorted[0] - edge.marginLogit, 6);
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

  it('refuses an empty or out-of-range set', () => {
    expect(() => conformalLowerEdge([], { alpha: 0.02, confidence: 0.95 })).toThrow(/at least one blast/);
    expect(() => conformalLowerEdge([1.2], { alpha: 0.02, confidence: 0.95 })).toThrow(/\[0, 1\]/);
  });
});
