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
import {
  applyCalibration,
  domainApi,
  fitRecipe,
  pooledScores,
  validateRecipeOptions,
  type DecisionReport,
  type RecipeCell,
} from '../ml/decisions';
import { servedProbabilities, type MeasuredExample } from '../ml/evaluate';
import { decodeImage } from '../ml/image/decode';
import { applyLabShift, isLabShift, LAB_SHIFTS, type LabShift } from '../ml/image/lab-shift';
import { computeMetrics, type BinaryMetrics } from '../ml/metrics';
import { loadModel, serializeModel } from '../ml/model-io';
import { morphologyNorms } from '../ml/morphology';
import { analyzeCell } from '../ml/predictor';
import { initRuntime } from '../ml/runtime';
import { splitBySubject } from '../ml/splits';
import { DEFAULT_TRAINING_CONFIG, type TrainingConfig } from '../ml/train';
import { buildModelCard } from '../services/model-card';
import type { ModelCard, NewModelCard } from '../services/models';
import { listFolder, loadFolder, type FolderImage } from './folder';
import { overlapWithTraining, reviewFigures, type ScoredCell } from './self-report';
import { Progress } from './progress';

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

export function printMetrics(title: string, m: BinaryMetrics): void {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
  process.stdout.write(
    `${title}: n=${m.n} accuracy ${f(m.accuracy)} (majority baseline ${f(m.majorityBaselineAccuracy)}) ` +
      `balanced ${f(m.balancedAccuracy)} sensitivity ${f(m.sensitivity)} specificity ${f(m.specificity)} ` +
      `F1 ${f(m.f1)} weighted F1 ${f(m.weightedF1)} ROC AUC ${f(m.rocAuc)} threshold ${f(m.threshold)}\n`,
  );
}

/**
 * `lymphoscope train`: a model directory (model.json, weights.bin, card.json) from a C-NMC style folder,
 * made the way every model is made (src/ml/decisions): subject-grouped k-fold cross-validation over the
 * training cells for each seed, calibration, threshold, review band and out-of-domain threshold from the
 * out-of-fold scores, then the served network trained on all training cells. With --test F a
 * subject-grouped share of the cells is held out and only scored by the final model.
 */
export async function trainCommand(flags: Flags): Promise<void> {
  const data = String(flags.data ?? '');
  const out = String(flags.out ?? '');
  if (!data || !out)
    throw new Error(
      'Usage: lymphoscope train --data <dir with all/ and hem/> --out <dir> [--folds 5] [--seeds 3] [--test 0] [--arch ...]',
    );
  const config = configFromFlags(flags);
  const recipe = validateRecipeOptions({ folds: num(flags, 'folds', 5), seeds: num(flags, 'seeds', 3) });
  const testFraction = num(flags, 'test', 0);
  const crossValidation = flags['cv-summary']
    ? await readCvSummary(String(flags['cv-summary']), config)
    : null;
  const runtime = await initRuntime();
  const progress = new Progress();
  const images = await loadFolder(data, config.inputSize, (d, t) =>
    progress.update(d / t, `decoding ${d}/${t}`),
  );
  progress.done();
  const split =
    testFraction > 0
      ? splitBySubject(images, { validationFraction: 0, testFraction, seed: config.seed })
      : { train: images, test: [] as FolderImage[] };
  const domain = domainApi();
  const cells: RecipeCell[] = [];
  const hashes: string[] = [];
  for (const image of split.train) {
    const bytes = await readFile(image.file);
    hashes.push(createHash('sha256').update(bytes).digest('hex'));
    cells.push({
      ...image,
      domainFeatures: domain ? domain.domainFeatures(await decodeImage(bytes)) : null,
    });
  }
  const subjects = new Set(cells.map((c) => c.subjectId ?? c.id)).size;
  process.stdout.write(
    `${images.length} images; ${cells.length} training cells of ${subjects} subjects in ${recipe.folds} ` +
      `subject-grouped folds x ${recipe.seeds} seeds, test ${split.test.length} (backend ${runtime.backend}` +
      `${domain ? '' : '; no out-of-domain detector in this build'})\n`,
  );
  const finished: Array<Record<string, unknown>> = [];
  const fitted = await fitRecipe(cells, config, recipe, {
    domain,
    onFoldProgress: (task, index, total, p) =>
      progress.update(
        (index + ((p.epoch - 1) * p.batchesPerEpoch + p.batch) / (p.epochs * p.batchesPerEpoch)) / total,
        `seed ${task.seed} fold ${task.fold + 1}/${task.folds} epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(3)}`,
      ),
    onFold: async (o, index, total) => {
      progress.done();
      // Every fold's out-of-fold scores as soon as it ends: the decisions can be refitted from this file.
      finished.push({
        seed: o.seed,
        fold: o.fold,
        bestEpoch: o.bestEpoch,
        testIds: o.testIds,
        testLabels: o.testLabels,
        probabilities: o.probabilities.map((p) => Number(p.toFixed(6))),
        domainScores: o.domainScores,
      });
      await mkdir(out, { recursive: true });
      await writeFile(path.join(out, 'out-of-fold.json'), JSON.stringify(finished) + '\n');
      process.stdout.write(
        `fold ${index + 1}/${total} (seed ${o.seed}, fold ${o.fold + 1}): best epoch ${o.bestEpoch}/${o.epochs}, ` +
          `${o.trainSeconds.toFixed(0)}s\n`,
      );
    },
    onFinalProgress: (p) =>
      progress.update(
        p.epoch / p.epochs,
        `final model epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(3)}`,
      ),
  });
  progress.done();
  const { model, decisions } = fitted;
  printDecisions(decisions);
  const rule = { ...config, fusion: fitted.fusion, calibration: decisions.calibration };
  const oof = pooledScores(fitted.folds)[0];
  const oofCalibrated = oof.probabilities.map((p) => applyCalibration(decisions.calibration, p));
  const validationMetrics = computeMetrics(oof.labels, oofCalibrated, decisions.threshold);
  let testMetrics: BinaryMetrics | null = null;
  let curveLabels = oof.labels as number[];
  let curveScores = oofCalibrated;
  if (split.test.length > 0) {
    curveLabels = split.test.map((i) => i.label);
    curveScores = await servedProbabilities(model, rule, toExamples(split.test));
    testMetrics = computeMetrics(curveLabels, curveScores, decisions.threshold);
    printMetrics('test (final model)', testMetrics);
  }
  const card = buildModelCard({
    config: { ...config, validationFraction: 0, testFraction },
    trainedOnBackend: runtime.backend,
    training: fitted.final,
    recipe: fitted,
    crossValidation,
    trainingImageSha256: hashes,
    testMetrics,
    validationMetrics,
    lineage: { jobId: null, datasetId: null, snapshotId: null, parentVersion: null, testSplitId: null },
    curve: { labels: curveLabels, probabilities: curveScores },
    morphologyNorms: morphologyNorms(cells.map((i) => ({ m: i.morphology, label: i.label }))),
    notes:
      `Trained by \`lymphoscope train --data ${path.relative(process.cwd(), data) || data}\` on ${cells.length} of ` +
      `${images.length} images (${subjects} subjects). Decisions from out-of-fold scores of ${recipe.folds}-fold ` +
      `subject-grouped cross-validation x ${recipe.seeds} seeds; the served network is trained on all ` +
      `${cells.length} training cells for ${fitted.finalEpochs} epochs (median best epoch of the folds). ` +
      `validationMetrics and the curves are ${split.test.length > 0 ? 'out-of-fold (first seed) and the test split respectively' : 'out of fold (first seed, calibrated): there is no test split'}.`,
  });
  await writeModelDir(out, model, card);
  model.dispose();
  process.stdout.write(`Model written to ${out}\n`);
}

/** The decisions and what they cost, one line each, on stdout. */
function printDecisions(d: DecisionReport): void {
  const s = (x: Spread) => `${fmt(x.mean)} ± ${fmt(x.std)}`;
  const g = d.guarantee;
  process.stdout.write(
    `out of fold (${d.cells} cells, ${d.blasts} blasts, seeds ${d.seeds.join(',')}): ROC AUC ${s(d.outOfFold.rocAuc)}, ` +
      `ECE ${fmt(d.ece.before)} -> ${fmt(d.ece.after)} (${d.calibration ? 'Platt' : 'not calibrated'})\n` +
      `threshold ${fmt(d.threshold)}, review band [${fmt(d.reviewLow)}, ${fmt(d.reviewHigh)}): blasts ALL or review ` +
      `${s(d.outOfFold.allOrReviewSensitivity)}, flagged ${s(d.outOfFold.flaggedShare)}, review rate ${s(d.outOfFold.reviewRate)}\n` +
      `bound: ${g.blastsBelowEdge}/${g.blasts} blasts below the band; at ${g.confidence} confidence at most ` +
      `${fmt(g.achievedBound)} of blasts fall below it (asked ${g.alpha}${g.attained ? ', attained' : `, needs ${g.blastsNeeded} blasts`})\n`,
  );
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
