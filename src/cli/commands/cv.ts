import path from 'node:path';
import {
  crossValidate,
  recipeScorer,
  SCORERS,
  SUMMARY_METRICS,
  type CvReport,
  type CvShift,
  type Spread,
  type SummaryMetric,
} from '../../ml/evaluation/cross-validation';
import { applyLabShift, isLabShift, LAB_SHIFTS, type LabShift } from '../../ml/image/lab-shift';
import type { BinaryMetrics } from '../../ml/evaluation/metrics';
import { initRuntime } from '../../ml/runtime';
import { loadFolder } from '../folder';
import { Progress } from '../progress';
import { num, configFromFlags, type Flags } from './flags';
import { fmt } from './print';

/** `lymphoscope cv`: repeated subject-grouped k-fold cross-validation of a recipe; see src/ml/evaluation/cross-validation.ts. */
export async function cvCommand(flags: Flags): Promise<void> {
  const data = String(flags.data ?? '');
  if (!data)
    throw new Error(
      'Usage: lymphoscope cv --data <dir> [--folds 5] [--repeats 1] [--shifts all|hue,...] [--json] [training flags]',
    );
  const config = configFromFlags(flags);
  const folds = num(flags, 'folds', 5);
  const repeats = num(flags, 'repeats', 1);
  const shiftNames = parseShifts(flags.shifts);
  const runtime = await initRuntime();
  const progress = new Progress();
  const images = await loadFolder(data, config.inputSize);
  const shifts: CvShift[] = [];
  for (const name of shiftNames) {
    shifts.push({
      name,
      items: await loadFolder(data, config.inputSize, undefined, (i) => applyLabShift(i, name)),
    });
  }
  const started = performance.now();
  const report = await crossValidate(images, config, {
    folds,
    repeats,
    shifts,
    onProgress: (id, p) =>
      progress.update(
        ((p.epoch - 1) * p.batchesPerEpoch + p.batch) / (p.epochs * p.batchesPerEpoch),
        `repeat ${id.repeat}/${id.repeats} fold ${id.fold}/${id.folds} epoch ${p.epoch}/${p.epochs} ` +
          `loss ${p.loss.toFixed(3)} ${p.imagesPerSecond.toFixed(0)} img/s`,
      ),
    onFold: (r) => {
      progress.done();
      const s = recipeScorer(config);
      const f = (m: BinaryMetrics) =>
        `wF1 ${fmt(m.weightedF1)} AUC ${fmt(m.rocAuc)} sens ${fmt(m.sensitivity)} spec ${fmt(m.specificity)}`;
      process.stdout.write(
        `repeat ${r.repeat} fold ${r.fold} (train ${r.counts.train}, validation ${r.counts.validation}, ` +
          `test ${r.counts.test}; best epoch ${r.bestEpoch}/${r.epochs}, ${r.trainSeconds.toFixed(0)}s): ` +
          `${s} ${f(r.scores[s])} | morphology ${f(r.scores.morphology)}\n`,
      );
    },
  });
  const seconds = (performance.now() - started) / 1000;
  if (!flags.json) printCvReport(report);
  const subjects = new Set(images.map((i) => i.subjectId ?? i.id)).size;
  const summary = {
    data: path.relative(process.cwd(), data) || data,
    n: images.length,
    subjects,
    folds,
    repeats,
    config,
    backend: runtime.backend,
    seconds: Math.round(seconds),
    recipeScorer: report.recipeScorer,
    summary: report.summary,
    pooledRocAuc: report.pooledRocAuc,
    shifted: report.shifted,
    perFold: report.folds.map((r) => ({
      repeat: r.repeat,
      fold: r.fold,
      counts: r.counts,
      bestEpoch: r.bestEpoch,
      scores: Object.fromEntries(
        Object.entries(r.scores).map(([scorer, m]) => [
          scorer,
          {
            weightedF1: m.weightedF1,
            rocAuc: m.rocAuc,
            sensitivity: m.sensitivity,
            specificity: m.specificity,
          },
        ]),
      ),
    })),
  };
  // The last line is the whole summary as JSON, with or without --json, so scripts can read it.
  process.stdout.write(JSON.stringify(summary) + '\n');
}

function parseShifts(value: string | boolean | undefined): LabShift[] {
  if (value === undefined || value === false) return [];
  const names =
    value === 'all'
      ? [...LAB_SHIFTS]
      : String(value)
          .split(',')
          .map((s) => s.trim());
  for (const name of names) {
    if (!isLabShift(name))
      throw new Error(`--shifts: unknown shift '${name}'; expected all or ${LAB_SHIFTS.join(', ')}.`);
  }
  return names as LabShift[];
}

/** The table of every scorer, mean ± standard deviation over folds, recipe's scorer marked. */
function printCvReport(report: CvReport): void {
  const row = (label: string, spreads: Record<SummaryMetric, Spread>) =>
    `${label.padEnd(24)}` +
    SUMMARY_METRICS.slice(0, 4)
      .map((m) => `${fmt(spreads[m].mean)} ± ${fmt(spreads[m].std)}`.padEnd(18))
      .join('');
  const header = `${''.padEnd(24)}${SUMMARY_METRICS.slice(0, 4)
    .map((m) => m.padEnd(18))
    .join('')}pooled AUC\n`;
  process.stdout.write(header);
  for (const scorer of SCORERS) {
    const mark = scorer === report.recipeScorer ? ' (recipe)' : '';
    const pooled = report.pooledRocAuc[scorer];
    process.stdout.write(
      `${row(scorer + mark, report.summary[scorer])}${fmt(pooled.mean)} ± ${fmt(pooled.std)}\n`,
    );
  }
  for (const [shift, summary] of Object.entries(report.shifted)) {
    process.stdout.write(`-- test folds shifted: ${shift}\n`);
    for (const scorer of SCORERS) process.stdout.write(`${row(scorer, summary[scorer])}\n`);
  }
}
