import {
  fitLogistic,
  logit,
  logitOf,
  predictLogistic,
  sigmoid,
  type LogisticModel,
} from '../../../src/ml/features/logistic';

/** Gradient of the penalised, weighted log-loss at the fitted model: zero at the optimum. */
function gradientAt(model: LogisticModel, rows: number[][], labels: number[], l2: number, weights: number[]) {
  const g = new Array(model.features.length + 1).fill(0);
  rows.forEach((row, i) => {
    const z = row.map((v, j) => (v - model.mean[j]) / model.scale[j]);
    const residual = weights[i] * (predictLogistic(model, row) - labels[i]);
    g[0] += residual;
    z.forEach((v, j) => (g[j + 1] += residual * v));
  });
  model.weights.forEach((w, j) => (g[j + 1] += l2 * w));
  return g;
}

describe('fitLogistic', () => {
  const rows = [
    [1, 5],
    [2, 3],
    [3, 4],
    [4, 1],
    [5, 2],
    [6, 0],
    [2.5, 2],
    [4.5, 3],
  ];
  const labels = [0, 0, 0, 1, 1, 1, 1, 0];

  it('reaches the optimum of the penalised log-likelihood (zero gradient)', () => {
    const model = fitLogistic(rows, labels, ['a', 'b'], { l2: 1 });
    const g = gradientAt(
      model,
      rows,
      labels,
      1,
      labels.map(() => 1),
    );
    for (const v of g) expect(Math.abs(v)).toBeLessThan(1e-8);
    // Feature a rises with the label and b falls: the signs say so.
    expect(model.weights[0]).toBeGreaterThan(0);
    expect(model.weights[1]).toBeLessThan(0);
  });

  it('standardises on the training rows and predicts with raw values', () => {
    const model = fitLogistic(rows, labels, ['a', 'b'], { l2: 1 });
    expect(model.mean[0]).toBeCloseTo(28 / 8, 12);
    const row = [3.3, 1.7];
    const z =
      model.bias +
      model.weights[0] * ((3.3 - model.mean[0]) / model.scale[0]) +
      model.weights[1] * ((1.7 - model.mean[1]) / model.scale[1]);
    expect(logitOf(model, row)).toBeCloseTo(z, 12);
    expect(predictLogistic(model, row)).toBeCloseTo(1 / (1 + Math.exp(-z)), 12);
  });

  it('gives a constant feature no weight and the base rate as bias; balanced weights give even odds', () => {
    const constant = [[7], [7], [7], [7]];
    const plain = fitLogistic(constant, [1, 1, 1, 0], ['c'], { l2: 1 });
    expect(plain.weights[0]).toBeCloseTo(0, 10);
    expect(plain.bias).toBeCloseTo(Math.log(3), 8);
    const balanced = fitLogistic(constant, [1, 1, 1, 0], ['c'], { l2: 1, balanced: true });
    expect(balanced.bias).toBeCloseTo(0, 8);
  });

  it('stays finite on separable data thanks to the penalty, and a larger penalty shrinks the weight', () => {
    const separable = [[0], [1], [2], [3]];
    const soft = fitLogistic(separable, [0, 0, 1, 1], ['x'], { l2: 0.01 });
    const firm = fitLogistic(separable, [0, 0, 1, 1], ['x'], { l2: 10 });
    expect(Number.isFinite(soft.weights[0])).toBe(true);
    expect(soft.weights[0]).toBeGreaterThan(firm.weights[0]);
    expect(firm.weights[0]).toBeGreaterThan(0);
  });

  it('reads a non-finite value as the feature mean', () => {
    const model = fitLogistic(rows, labels, ['a', 'b'], { l2: 1 });
    expect(logitOf(model, [NaN, model.mean[1]])).toBeCloseTo(model.bias, 12);
  });

  it('refuses mismatched shapes and labels', () => {
    expect(() => fitLogistic([[1]], [0, 1], ['a'], { l2: 1 })).toThrow(/labels/);
    expect(() => fitLogistic([[1, 2]], [0], ['a'], { l2: 1 })).toThrow(/expected 1/);
    expect(() => fitLogistic([[1]], [2], ['a'], { l2: 1 })).toThrow(/0 or 1/);
    expect(() => fitLogistic([], [], ['a'], { l2: 1 })).toThrow(/rows/);
  });
});

describe('sigmoid and logit', () => {
  it('are inverses, stable at the extremes', () => {
    for (const p of [0.01, 0.3, 0.5, 0.9]) expect(sigmoid(logit(p))).toBeCloseTo(p, 12);
    expect(sigmoid(-1000)).toBe(0);
    expect(sigmoid(1000)).toBe(1);
    expect(Number.isFinite(logit(0))).toBe(true);
    expect(Number.isFinite(logit(1))).toBe(true);
  });
});
