import { badInput } from '../../errors';
import { fitLogistic, logit, sigmoid } from '../features/logistic';

/**
 * Platt scaling: p' = sigmoid(slope * logit(p) + intercept), fitted by maximum likelihood on scores a
 * model gave cells it never saw (out of fold). Monotone, so it changes no ranking and no call once the
 * threshold is moved with it; it only makes "0.8" mean "about 80% of such cells are blasts".
 */
export interface PlattCalibration {
  method: 'platt';
  slope: number;
  intercept: number;
}

export function applyCalibration(calibration: PlattCalibration | null | undefined, p: number): number {
  if (!calibration) return p;
  return sigmoid(calibration.slope * logit(p) + calibration.intercept);
}

/**
 * Fits Platt scaling on out-of-fold probabilities. Returns null when it cannot be fitted honestly: one
 * class only, or a slope that is not positive (the scores rank blasts no better than chance or worse,
 * and a "calibration" would have to reverse or flatten them).
 */
export function fitPlatt(labels: Array<0 | 1>, probabilities: number[]): PlattCalibration | null {
  if (labels.length !== probabilities.length)
    throw badInput(`Got ${labels.length} labels but ${probabilities.length} probabilities.`);
  const positives = labels.filter((l) => l === 1).length;
  if (positives === 0 || positives === labels.length) return null;
  // A whisper of ridge keeps the fit finite when the scores separate the classes perfectly.
  const model = fitLogistic(
    probabilities.map((p) => [logit(p)]),
    labels,
    ['logit'],
    { l2: 1e-2 },
  );
  const slope = model.weights[0] / model.scale[0];
  const intercept = model.bias - (model.weights[0] * model.mean[0]) / model.scale[0];
  if (!(slope > 1e-6) || !Number.isFinite(intercept)) return null;
  return { method: 'platt', slope, intercept };
}

/**
 * Calibrates each group (a cross-validation fold) with Platt scaling fitted on all the other groups, so
 * the calibration error measured afterwards is that of new data, not of the data it was fitted on.
 * A group whose complement cannot be fitted keeps its raw scores.
 */
export function crossFittedCalibration(
  labels: Array<0 | 1>,
  probabilities: number[],
  groups: number[],
): number[] {
  const out = [...probabilities];
  for (const group of new Set(groups)) {
    const rest = labels.map((_, i) => i).filter((i) => groups[i] !== group);
    const fit = fitPlatt(
      rest.map((i) => labels[i]),
      rest.map((i) => probabilities[i]),
    );
    groups.forEach((g, i) => {
      if (g === group) out[i] = applyCalibration(fit, probabilities[i]);
    });
  }
  return out;
}
