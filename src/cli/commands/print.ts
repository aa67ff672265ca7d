import type { BinaryMetrics } from '../../ml/evaluation/metrics';

/** One line of a model's test figures, with the majority baseline beside accuracy. */
export function printMetrics(title: string, m: BinaryMetrics): void {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
  process.stdout.write(
    `${title}: n=${m.n} accuracy ${f(m.accuracy)} (majority baseline ${f(m.majorityBaselineAccuracy)}) ` +
      `balanced ${f(m.balancedAccuracy)} sensitivity ${f(m.sensitivity)} specificity ${f(m.specificity)} ` +
      `F1 ${f(m.f1)} weighted F1 ${f(m.weightedF1)} ROC AUC ${f(m.rocAuc)} threshold ${f(m.threshold)}\n`,
  );
}

/** A figure with three decimals, n/a when not finite. */
export const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

/** A share as a percentage with one decimal, n/a when not finite. */
export const pct = (share: number) => (Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : 'n/a');
