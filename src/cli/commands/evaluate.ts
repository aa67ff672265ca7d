import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { decodeImage } from '../../ml/image/decode';
import { computeMetrics } from '../../ml/evaluation/metrics';
import { analyzeCell } from '../../ml/serving/predictor';
import { initRuntime } from '../../ml/runtime';
import { listFolder } from '../folder';
import { overlapWithTraining, reviewFigures, type ScoredCell } from '../self-report';
import type { Flags } from './flags';
import { DEMO_MODEL_DIR } from '../../config';
import { readModelDir } from './model-dir';
import { pct, printMetrics } from './print';
import { builtNetwork } from '../../ml/serving/tfjs-network';

/**
 * `lymphoscope evaluate`: metrics of a model on every image of a labelled folder, each image scored as
 * serving scores it (analyzeCell: the card's threshold, review band and out-of-domain check), and a
 * self-report: whether the images were in the model's training set, and what review caught.
 */
export async function evaluateCommand(flags: Flags): Promise<void> {
  const data = String(flags.data ?? '');
  if (!data) throw new Error('Usage: lymphoscope evaluate [--model <dir>] --data <dir> [--json] [--tta]');
  const entries = await listFolder(data);
  await initRuntime();
  const { model, card } = await readModelDir(String(flags.model ?? DEMO_MODEL_DIR));
  const network = builtNetwork(model);
  // The card's serving rule (TTA, morphology stack); --tta adds TTA to a card that lacks it.
  const rule = { ...card, testTimeAugmentation: card.testTimeAugmentation === true || Boolean(flags.tta) };
  const probabilities: number[] = [];
  const hashes: string[] = [];
  const cells: ScoredCell[] = [];
  try {
    // One image at a time: memory stays that of one decoded image, whatever the folder's size.
    for (const entry of entries) {
      const bytes = await readFile(entry.file);
      hashes.push(createHash('sha256').update(bytes).digest('hex'));
      const analysis = await analyzeCell(network, rule, await decodeImage(bytes), { explain: false });
      probabilities.push(analysis.probabilityAll);
      cells.push({
        label: entry.label,
        calledAll: analysis.isAll,
        reviewReasons: analysis.reviewReasons,
        outOfDomainScore: analysis.outOfDomainScore,
      });
    }
  } finally {
    model.dispose();
  }
  const labels = entries.map((e) => e.label);
  const metrics = computeMetrics(labels, probabilities, card.threshold);
  const overlap = overlapWithTraining(card, hashes);
  const review = reviewFigures(cells);
  const classes = { all: labels.filter((l) => l === 1).length, normal: labels.filter((l) => l === 0).length };

  // Warnings go to stderr, so --json output stays one JSON line.
  const warn = (message: string) => process.stderr.write(`warning: ${message}\n`);
  if (overlap.known && overlap.count > 0) {
    warn(
      `${overlap.count} of ${entries.length} images (${pct(overlap.share)}) are in the model's training set: ` +
        'these figures overstate how it does on cells it has not seen.',
    );
  } else if (!overlap.known) {
    warn(`${overlap.reason}.`);
  }
  if (classes.all === 0 || classes.normal === 0) {
    warn(
      `only one class is present (${classes.all} ALL, ${classes.normal} normal): the metrics of the other are n/a.`,
    );
  }
  if (!flags.json) {
    printMetrics(`${entries.length} images`, metrics);
    process.stdout.write(
      `blasts called ALL or sent to review ${pct(review.allOrReviewSensitivity)} · review rate ` +
        `${pct(review.reviewRate)} (UNCERTAIN ${review.reasons.UNCERTAIN}, OUT_OF_DOMAIN ` +
        `${review.reasons.OUT_OF_DOMAIN}) · out of domain ` +
        `${review.outOfDomainRate === null ? 'n/a (no out-of-domain model in the card)' : pct(review.outOfDomainRate)}\n`,
    );
    return;
  }
  const summary = {
    n: metrics.n,
    classes,
    accuracy: metrics.accuracy,
    balancedAccuracy: metrics.balancedAccuracy,
    sensitivity: metrics.sensitivity,
    specificity: metrics.specificity,
    f1: metrics.f1,
    weightedF1: metrics.weightedF1,
    rocAuc: metrics.rocAuc,
    prAuc: metrics.prAuc,
    brier: metrics.brier,
    ece: metrics.ece,
    majorityBaselineAccuracy: metrics.majorityBaselineAccuracy,
    confusion: metrics.confusion,
    threshold: metrics.threshold,
    reviewLow: card.reviewLow,
    reviewHigh: card.reviewHigh,
    allOrReviewSensitivity: review.allOrReviewSensitivity,
    reviewRate: review.reviewRate,
    outOfDomainRate: review.outOfDomainRate,
    reviewReasons: review.reasons,
    overlapWithTraining: overlap,
    modelVersion: card.version,
    architecture: card.architecture,
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
}
