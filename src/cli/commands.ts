import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { isArchitecture } from '../ml/architectures';
import {
  crossValidate,
  crossValidationSummary,
  recipeScorer,
  SCORERS,
  SUMMARY_METRICS,
  type CvReport,
  type CrossValidationSummary,
  type CvShift,
  type Spread,
  type SummaryMetric,
} from '../ml/cross-validation';
import { evaluateRecipe, type MeasuredExample } from '../ml/evaluate';
import { decodeImage } from '../ml/image/decode';
import { applyLabShift, isLabShift, LAB_SHIFTS, type LabShift } from '../ml/image/lab-shift';
import { augmenterFor } from '../ml/image/preprocess';
import { computeMetrics, type BinaryMetrics } from '../ml/metrics';
import { loadModel, serializeModel } from '../ml/model-io';
import { morphologyNorms } from '../ml/morphology';
import { analyzeCell } from '../ml/predictor';
import { initRuntime } from '../ml/runtime';
import { splitBySubject } from '../ml/splits';
import { DEFAULT_TRAINING_CONFIG, train, type TrainingConfig } from '../ml/train';
import { PREPROCESSING, type ModelCard, type NewModelCard } from '../services/models';
import { listFolder, loadFolder, type FolderImage } from './folder';
import { overlapWithTraining, reviewFigures, type ScoredCell } from './self-report';
import { formatSeconds, Progress } from './progress';

export const DEFAULT_MODEL_DIR = path.join(__dirname, '..', '..', 'data', 'demo-model');

export type Flags = Record<string, string | boolean | undefined>;

const num = (flags: Flags, name: string, fallback: number): number => {
  const v = flags[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number (got ${String(v)}).`);
  return n;
};

/** Every lever of the recipe off: the plain CNN the levers are measured against. */
export const PLAIN_RECIPE: Pick<
  TrainingConfig,
  'colourJitter' | 'recomputeBatchNorm' | 'testTimeAugmentation' | 'fusion'
> = { colourJitter: 0, recomputeBatchNorm: false, testTimeAugmentation: false, fusion: 'none' };

const FUSIONS: ReadonlyArray<TrainingConfig['fusion']> = ['none', 'morphology-blend', 'morphology-stack'];

/**
 * The training config the flags ask for: DEFAULT_TRAINING_CONFIG (or, with --recipe plain, the same
 * without any lever), then each flag. A lever flag and its --no- twin together are refused.
 */
export function configFromFlags(flags: Flags): TrainingConfig {
  const recipe = String(flags.recipe ?? 'default');
  if (recipe !== 'default' && recipe !== 'plain') throw new Error('--recipe must be default or plain.');
  const base: TrainingConfig = {
    ...DEFAULT_TRAINING_CONFIG,
    ...(recipe === 'plain' ? PLAIN_RECIPE : {}),
  };
  const arch = String(flags.arch ?? base.architecture);
  if (!isArchitecture(arch))
    throw new Error(`--arch must be one of majority, vanilla, seed-2x2x1x1, lymphonet (got ${arch}).`);
  const balance = String(flags['class-balance'] ?? base.classBalance);
  if (!['weights', 'sampling', 'none'].includes(balance))
    throw new Error('--class-balance must be weights, sampling or none.');
  const fusion = String(flags.fusion ?? base.fusion);
  if (!FUSIONS.includes(fusion as TrainingConfig['fusion']))
    throw new Error(`--fusion must be one of ${FUSIONS.join(', ')} (got ${fusion}).`);
  const toggle = (name: string, fallback: boolean): boolean => {
    if (flags[name] && flags[`no-${name}`])
      throw new Error(`--${name} and --no-${name} contradict each other.`);
    return flags[name] ? true : flags[`no-${name}`] ? false : fallback;
  };
  return {
    ...base,
    architecture: arch,
    inputSize: num(flags, 'input-size', base.inputSize),
    epochs: num(flags, 'epochs', base.epochs),
    batchSize: num(flags, 'batch-size', base.batchSize),
    learningRate: num(flags, 'lr', base.learningRate),
    patience: num(flags, 'patience', base.patience),
    classBalance: balance as TrainingConfig['classBalance'],
    augment: toggle('augment', base.augment),
    seed: num(flags, 'seed', base.seed),
    colourJitter: num(flags, 'colour-jitter', base.colourJitter),
    recomputeBatchNorm: toggle('bn-recompute', base.recomputeBatchNorm),
    testTimeAugmentation: toggle('tta', base.testTimeAugmentation),
    fusion: fusion as TrainingConfig['fusion'],
  };
}

const toExamples = (images: FolderImage[]): MeasuredExample[] =>
  images.map((i) => ({ pixels: i.pixels, label: i.label, morphology: i.morphology }));

/** Trains on one split and evaluates the recipe on its validation and test parts, with progress on stderr. */
async function fitAndEvaluate(
  config: TrainingConfig,
  split: { train: FolderImage[]; validation: FolderImage[]; test: FolderImage[] },
  options: { progress: Progress; label: string },
) {
  const result = await train({
    config,
    train: toExamples(split.train),
    validation: toExamples(split.validation),
    augment: augmenterFor(config),
    onProgress: (p) =>
      options.progress.update(
        ((p.epoch - 1) * p.batchesPerEpoch + p.batch) / (p.epochs * p.batchesPerEpoch),
        `${options.label} epoch ${p.epoch}/${p.epochs} batch ${p.batch}/${p.batchesPerEpoch} loss ${p.loss.toFixed(3)} ` +
          `${p.imagesPerSecond.toFixed(0)} img/s ETA ${formatSeconds(p.etaSeconds)}`,
      ),
    onCheckpoint: async (cp) => {
      const e = cp.history[cp.history.length - 1];
      options.progress.line(
        `${options.label} epoch ${e.epoch}: loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(3)} ` +
          `val_loss ${e.valLoss.toFixed(4)} val_acc ${e.valAccuracy.toFixed(3)} (${e.seconds.toFixed(1)}s)`,
      );
    },
  });
  options.progress.done();
  const model = result.model!;
  const evaluation = await evaluateRecipe(
    model,
    {
      train: toExamples(split.train),
      validation: toExamples(split.validation),
      test: toExamples(split.test),
    },
    config,
  );
  return { model, result, evaluation };
}

export function printMetrics(title: string, m: BinaryMetrics): void {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
  process.stdout.write(
    `${title}: n=${m.n} accuracy ${f(m.accuracy)} (majority baseline ${f(m.majorityBaselineAccuracy)}) ` +
      `balanced ${f(m.balancedAccuracy)} sensitivity ${f(m.sensitivity)} specificity ${f(m.specificity)} ` +
      `F1 ${f(m.f1)} weighted F1 ${f(m.weightedF1)} ROC AUC ${f(m.rocAuc)} threshold ${f(m.threshold)}\n`,
  );
}

/** `lymphoscope train`: a model directory (model.json, weights.bin, card.json) from a C-NMC style folder. */
export async function trainCommand(flags: Flags): Promise<void> {
  const data = String(flags.data ?? '');
  const out = String(flags.out ?? '');
  if (!data || !out)
    throw new Error('Usage: lymphoscope train --data <dir with all/ and hem/> --out <dir> [--arch ...]');
  const config = configFromFlags(flags);
  const crossValidation = flags['cv-summary']
    ? await readCvSummary(String(flags['cv-summary']), config)
    : null;
  const runtime = await initRuntime();
  const progress = new Progress();
  const images = await loadFolder(data, config.inputSize, (d, t) =>
    progress.update(d / t, `decoding ${d}/${t}`),
  );
  progress.done();
  const split = splitBySubject(images, {
    validationFraction: num(flags, 'validation', 0.2),
    testFraction: num(flags, 'test', 0.2),
    seed: config.seed,
  });
  process.stdout.write(
    `${images.length} images; subject-grouped split: train ${split.train.length}, validation ${split.validation.length}, test ${split.test.length} (backend ${runtime.backend})\n`,
  );
  const { model, result, evaluation } = await fitAndEvaluate(config, split, {
    progress,
    label: config.architecture,
  });
  printMetrics('validation', evaluation.validation);
  printMetrics('test', evaluation.test);
  const card: NewModelCard = {
    architecture: config.architecture,
    inputSize: config.inputSize,
    trainedOnBackend: runtime.backend,
    trainingRuntime: result.trainingRuntime,
    config: {
      ...config,
      validationFraction: num(flags, 'validation', 0.2),
      testFraction: num(flags, 'test', 0.2),
    },
    testTimeAugmentation: config.testTimeAugmentation,
    fusion: evaluation.fusion,
    crossValidation,
    threshold: evaluation.threshold,
    reviewLow: evaluation.band.low,
    reviewHigh: evaluation.band.high,
    testMetrics: evaluation.test,
    validationMetrics: evaluation.validation,
    history: result.history,
    bestEpoch: result.bestEpoch,
    lineage: { jobId: null, datasetId: null, snapshotId: null, parentVersion: null, testSplitId: null },
    rocCurve: evaluation.roc,
    prCurve: evaluation.pr,
    morphologyNorms: morphologyNorms(split.train.map((i) => ({ m: i.morphology, label: i.label }))),
    preprocessing: PREPROCESSING,
    notes:
      `Trained by \`lymphoscope train --data ${path.relative(process.cwd(), data) || data}\` on ${images.length} images ` +
      `(${split.train.length} train / ${split.validation.length} validation / ${split.test.length} test, grouped by subject).`,
  };
  await writeModelDir(out, model, card);
  model.dispose();
  process.stdout.write(`Model written to ${out}\n`);
}

/** Settings that make two configs the same recipe; the seed and the split fractions may differ. */
const RECIPE_KEYS = [
  'architecture',
  'inputSize',
  'epochs',
  'batchSize',
  'learningRate',
  'patience',
  'classBalance',
  'augment',
  'colourJitter',
  'recomputeBatchNorm',
  'testTimeAugmentation',
  'fusion',
] as const;

/**
 * Reads what `lymphoscope cv` printed (its last line is the JSON summary) for the model card. A summary
 * of another recipe is refused: a card must not claim figures its own recipe did not earn.
 */
export async function readCvSummary(file: string, config: TrainingConfig): Promise<CrossValidationSummary> {
  const lines = (await readFile(file, 'utf8')).trim().split('\n');
  let cv: {
    data: string;
    n: number;
    subjects: number;
    folds: number;
    repeats: number;
    config: TrainingConfig;
    summary: CvReport['summary'];
    pooledRocAuc: CvReport['pooledRocAuc'];
    recipeScorer: CvReport['recipeScorer'];
  };
  try {
    cv = JSON.parse(lines[lines.length - 1]);
  } catch {
    throw new Error(`${file} does not end with the JSON summary line of \`lymphoscope cv\`.`);
  }
  if (!cv?.summary || !cv.config || !cv.recipeScorer)
    throw new Error(`${file} does not end with the JSON summary line of \`lymphoscope cv\`.`);
  const differing = RECIPE_KEYS.filter((k) => cv.config[k] !== config[k]);
  if (differing.length > 0) {
    throw new Error(
      `${file} cross-validated another recipe (${differing.join(', ')} differ); rerun cv with these flags.`,
    );
  }
  return crossValidationSummary(
    {
      summary: cv.summary,
      pooledRocAuc: cv.pooledRocAuc,
      recipeScorer: cv.recipeScorer,
      folds: [],
      shifted: {},
    },
    { data: cv.data, n: cv.n, subjects: cv.subjects, folds: cv.folds, repeats: cv.repeats },
  );
}

async function writeModelDir(dir: string, model: tf.LayersModel, card: NewModelCard): Promise<void> {
  const bundle = await serializeModel(model);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(bundle.modelJson));
  await writeFile(path.join(dir, 'weights.bin'), bundle.weights);
  await writeFile(
    path.join(dir, 'card.json'),
    JSON.stringify({ version: 'local', createdAt: new Date().toISOString(), ...card }, null, 2) + '\n',
  );
}

async function readModelDir(dir: string): Promise<{ model: tf.LayersModel; card: ModelCard }> {
  const [modelJson, weights, card] = await Promise.all([
    readFile(path.join(dir, 'model.json'), 'utf8'),
    readFile(path.join(dir, 'weights.bin')),
    readFile(path.join(dir, 'card.json'), 'utf8'),
  ]);
  return { model: await loadModel({ modelJson: JSON.parse(modelJson), weights }), card: JSON.parse(card) };
}

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
  const { model, card } = await readModelDir(String(flags.model ?? DEFAULT_MODEL_DIR));
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
      const analysis = await analyzeCell(model, rule, await decodeImage(bytes), { explain: false });
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

const pct = (share: number) => (Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : 'n/a');

/**
 * `lymphoscope predict`: per image, the call and what it means: label, p(ALL), the threshold it was
 * called against, and whether a person must review it and why.
 */
export async function predictCommand(flags: Flags, files: string[]): Promise<void> {
  if (files.length === 0) throw new Error('Usage: lymphoscope predict [--model <dir>] [--json] <image>...');
  await initRuntime();
  const { model, card } = await readModelDir(String(flags.model ?? DEFAULT_MODEL_DIR));
  const f = (v: number) => v.toFixed(2);
  const band =
    card.reviewLow < card.reviewHigh
      ? `outside the review band [${f(card.reviewLow)}, ${f(card.reviewHigh)})`
      : 'this model has an empty review band';
  try {
    for (const file of files) {
      const image = await decodeImage(await readFile(file));
      const analysis = await analyzeCell(model, card, image, { explain: false });
      const row = {
        file,
        label: analysis.isAll ? 'ALL' : 'NORMAL',
        probabilityAll: Number(analysis.probabilityAll.toFixed(4)),
        threshold: card.threshold,
        reviewLow: card.reviewLow,
        reviewHigh: card.reviewHigh,
        needsReview: analysis.needsReview,
        reviewReasons: analysis.reviewReasons,
        outOfDomainScore: analysis.outOfDomainScore,
        modelVersion: card.version,
        areaPx: analysis.morphology.areaPx,
        solidity: Number(analysis.morphology.solidity.toFixed(3)),
      };
      const review = row.needsReview
        ? `needs review: ${row.reviewReasons.join(', ')}`
        : `no review asked (${band})`;
      process.stdout.write(
        flags.json
          ? JSON.stringify(row) + '\n'
          : `${file}: ${row.label} p(ALL)=${f(row.probabilityAll)} (threshold ${f(row.threshold)}) - ${review}\n`,
      );
    }
  } finally {
    model.dispose();
  }
}

/** `lymphoscope cv`: repeated subject-grouped k-fold cross-validation of a recipe; see src/ml/cross-validation.ts. */
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

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

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
