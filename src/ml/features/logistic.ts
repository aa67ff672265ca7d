import { badInput } from '../../errors';

/**
 * A logistic regression small enough to live in a model card: standardised inputs, one weight per
 * feature and a bias. p = sigmoid(bias + sum_i weights[i] * (x[i] - mean[i]) / scale[i]).
 */
export interface LogisticModel {
  features: string[];
  mean: number[];
  scale: number[];
  weights: number[];
  bias: number;
}

export interface FitOptions {
  /** Ridge penalty on the standardised weights (not the bias), as if `l2` extra "prior" examples. */
  l2: number;
  /** Weigh each class by inverse frequency, so a 2:1 set does not buy accuracy with the majority class. */
  balanced?: boolean;
}

const MAX_ROWS = 1_000_000;
const MAX_FEATURES = 64;
const ITERATIONS = 50;

/**
 * Fits by Newton's method on the penalised log-likelihood (convex, so it converges to the one optimum
 * whatever the start; deterministic, no learning rate to tune). Features are standardised on `rows`; a
 * constant feature gets scale 1 and, with the penalty, weight 0. Non-finite values are replaced by the
 * feature's mean (a cell whose outline could not be measured says nothing about that feature).
 */
export function fitLogistic(
  rows: number[][],
  labels: number[],
  features: string[],
  options: FitOptions,
): LogisticModel {
  const n = rows.length;
  const d = features.length;
  if (n === 0 || n > MAX_ROWS) throw badInput(`A logistic fit needs 1 to ${MAX_ROWS} rows; got ${n}.`);
  if (d === 0 || d > MAX_FEATURES) throw badInput(`A logistic fit needs 1 to ${MAX_FEATURES} features.`);
  if (labels.length !== n) throw badInput(`Got ${n} rows and ${labels.length} labels.`);
  if (!(options.l2 >= 0)) throw badInput(`l2 must be >= 0; got ${options.l2}.`);
  rows.forEach((row, i) => {
    if (row.length !== d) throw badInput(`Row ${i} has ${row.length} values; expected ${d}.`);
    if (labels[i] !== 0 && labels[i] !== 1) throw badInput(`Label ${i} must be 0 or 1.`);
  });

  const mean = features.map((_, j) => average(rows.map((r) => r[j]).filter(Number.isFinite)));
  const scale = features.map((_, j) => {
    const values = rows.map((r) => r[j]).filter(Number.isFinite);
    const sd = Math.sqrt(average(values.map((v) => (v - mean[j]) ** 2)));
    return sd > 1e-12 ? sd : 1;
  });
  const model: LogisticModel = { features: [...features], mean, scale, weights: Array(d).fill(0), bias: 0 };
  const x = rows.map((r) => standardise(model, r));

  const positives = labels.filter((l) => l === 1).length;
  const negatives = n - positives;
  const classWeight = (label: number) =>
    options.balanced && positives > 0 && negatives > 0 ? n / (2 * (label === 1 ? positives : negatives)) : 1;
  const sampleWeight = labels.map(classWeight);
  // Start at the (weighted) base rate, so a one-class set still gets a finite, sensible bias.
  const weightedPositives = labels.reduce((s, l, i) => s + l * sampleWeight[i], 0);
  const totalWeight = sampleWeight.reduce((a, b) => a + b, 0);
  const rate = Math.min(Math.max(weightedPositives / totalWeight, 1e-3), 1 - 1e-3);
  model.bias = Math.log(rate / (1 - rate));

  // theta = [bias, w_1..w_d]; the penalty keeps the Hessian positive definite, even on separable data.
  const theta = [model.bias, ...model.weights];
  const penalty = Math.max(options.l2, 1e-6);
  for (let iteration = 0; iteration < ITERATIONS; iteration++) {
    const gradient = new Array<number>(d + 1).fill(0);
    const hessian = Array.from({ length: d + 1 }, () => new Array<number>(d + 1).fill(0));
    for (let i = 0; i < n; i++) {
      const xi = [1, ...x[i]];
      const p = sigmoid(dot(theta, xi));
      const w = sampleWeight[i];
      for (let a = 0; a <= d; a++) {
        gradient[a] += w * (p - labels[i]) * xi[a];
        for (let b = 0; b <= a; b++) hessian[a][b] += w * p * (1 - p) * xi[a] * xi[b];
      }
    }
    for (let a = 1; a <= d; a++) {
      gradient[a] += penalty * theta[a];
      hessian[a][a] += penalty;
    }
    hessian[0][0] += 1e-9;
    for (let a = 0; a <= d; a++) for (let b = a + 1; b <= d; b++) hessian[a][b] = hessian[b][a];
    const step = solve(hessian, gradient);
    let largest = 0;
    for (let a = 0; a <= d; a++) {
      theta[a] -= step[a];
      largest = Math.max(largest, Math.abs(step[a]));
    }
    if (largest < 1e-10) break;
  }
  model.bias = theta[0];
  model.weights = theta.slice(1);
  return model;
}

/** The probability of label 1 for one row of raw (unstandardised) feature values. */
export function predictLogistic(model: LogisticModel, row: number[]): number {
  return sigmoid(logitOf(model, row));
}

/** The log-odds of label 1, before the sigmoid. */
export function logitOf(model: LogisticModel, row: number[]): number {
  if (row.length !== model.features.length) {
    throw badInput(`Expected ${model.features.length} feature values; got ${row.length}.`);
  }
  return model.bias + dot(model.weights, standardise(model, row));
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** log(p / (1 - p)), with p kept 1e-6 away from 0 and 1 so a saturated network gives a finite logit. */
export function logit(p: number): number {
  const q = Math.min(Math.max(p, 1e-6), 1 - 1e-6);
  return Math.log(q / (1 - q));
}

function standardise(model: LogisticModel, row: number[]): number[] {
  return row.map((v, j) => (Number.isFinite(v) ? (v - model.mean[j]) / model.scale[j] : 0));
}

function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function average(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Gaussian elimination with partial pivoting; the matrices here are at most 65 x 65. */
function solve(matrix: number[][], vector: number[]): number[] {
  const size = vector.length;
  const a = matrix.map((row, i) => [...row, vector[i]]);
  for (let col = 0; col < size; col++) {
    let pivot = col;
    for (let r = col + 1; r < size; r++) if (Math.abs(a[r][col]) > Math.abs(a[pivot][col])) pivot = r;
    [a[col], a[pivot]] = [a[pivot], a[col]];
    const p = a[col][col];
    if (Math.abs(p) < 1e-300) continue;
    for (let r = col + 1; r < size; r++) {
      const f = a[r][col] / p;
      if (f === 0) continue;
      for (let c = col; c <= size; c++) a[r][c] -= f * a[col][c];
    }
  }
  const out = new Array<number>(size).fill(0);
  for (let r = size - 1; r >= 0; r--) {
    let s = a[r][size];
    for (let c = r + 1; c < size; c++) s -= a[r][c] * out[c];
    out[r] = Math.abs(a[r][r]) < 1e-300 ? 0 : s / a[r][r];
  }
  return out;
}
