import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { isArchitecture } from '../ml/architectures';
import { evaluateOnSplits, predictProbabilities, type Evaluation } from '../ml/evaluate';
import { decodeImage } from '../ml/image/decode';
import { augment } from '../ml/image/preprocess';
import { computeMetrics, type BinaryMetrics } from '../ml/metrics';
import { loadModel, serializeModel } from '../ml/model-io';
import { morphologyNorms } from '../ml/morphology';
import { analyzeCell } from '../ml/predictor';
import { initRuntime } from '../ml/runtime';
import { kFoldBySubject, splitBySubject } from '../ml/splits';
import { DEFAULT_TRAINING_CONFIG, train, type Example, type TrainingConfig } from '../ml/train';
import { PREPROCESSING, type ModelCard, type NewModelCard } from '../services/models';
import { loadFolder, type FolderImage } from './folder';
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

export function configFromFlags(flags: Flags): TrainingConfig {
  const arch = String(flags.arch ?? DEFAULT_TRAINING_CONFIG.architecture);
  if (!isArchitecture(arch))
    throw new Error(`--arch must be one of majority, vanilla, seed-2x2x1x1, lymphonet (got ${arch}).`);
  const balance = String(flags['class-balance'] ?? DEFAULT_TRAINING_CONFIG.classBalance);
  if (!['weights', 'sampling', 'none'].includes(balance))
    throw new Error('--class-balance must be weights, sampling or none.');
  return {
    ...DEFAULT_TRAINING_CONFIG,
    architecture: arch,
    inputSize: num(flags, 'input-size', DEFAULT_TRAINING_CONFIG.inputSize),
    epochs: num(flags, 'epochs', DEFAULT_TRAINING_CONFIG.epochs),
    batchSize: num(flags, 'batch-size', DEFAULT_TRAINING_CONFIG.batchSize),
    learningRate: num(flags, 'lr', DEFAULT_TRAINING_CONFIG.learningRate),
    patience: num(flags, 'patience', DEFAULT_TRAINING_CONFIG.patience),
    classBalance: balance as TrainingConfig['classBalance'],
    augment: flags['no-augment'] ? false : DEFAULT_TRAINING_CONFIG.augment,
    seed: num(flags, 'seed', DEFAULT_TRAINING_CONFIG.seed),
  };
}

const toExamples = (images: FolderImage[]): Example[] =>
  images.map((i) => ({ pixels: i.pixels, label: i.label }));

/** Trains on one split and evaluates on its validation and test parts, with progress on stderr. */
async function fitAndEvaluate(
  config: TrainingConfig,
  split: { train: FolderImage[]; validation: FolderImage[]; test: FolderImage[] },
  options: { tta: boolean; progress: Progress; label: string },
) {
  const result = await train({
    config,
    train: toExamples(split.train),
    validation: toExamples(split.validation),
    augment,
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
  const evaluation = await evaluateOnSplits(
    model,
    toExamples(split.validation),
    toExamples(split.test),
    config.inputSize,
    {
      tta: options.tta,
    },
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
  const tta = Boolean(flags.tta);
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
    tta,
    progress,
    label: config.architecture,
  });
  printMetrics('validation', evaluation.validation);
  printMetrics('test', evaluation.test);
  const card: NewModelCard = {
    architecture: config.architecture,
    inputSize: config.inputSize,
    trainedOnBackend: runtime.backend,
    config: {
      ...config,
      validationFraction: num(flags, 'validation', 0.2),
      testFraction: num(flags, 'test', 0.2),
    },
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

/** `lymphoscope evaluate`: metrics of a model on every image of a folder, with the card's threshold. */
export async function evaluateCommand(flags: Flags): Promise<void> {
  const data = String(flags.data ?? '');
  if (!data) throw new Error('Usage: lymphoscope evaluate [--model <dir>] --data <dir> [--json] [--tta]');
  await initRuntime();
  const { model, card } = await readModelDir(String(flags.model ?? DEFAULT_MODEL_DIR));
  const images = await loadFolder(data, card.inputSize);
  const probabilities = await predictProbabilities(model, images, card.inputSize, {
    tta: Boolean(flags.tta),
  });
  const metrics = computeMetrics(
    images.map((i) => i.label),
    probabilities,
    card.threshold,
  );
  model.dispose();
  if (!flags.json) printMetrics(`${images.length} images`, metrics);
  const summary = {
    n: metrics.n,
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
    modelVersion: card.version,
    architecture: card.architecture,
  };
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
}

/** `lymphoscope predict`: label, probability and review flag per image. */
export async function predictCommand(flags: Flags, files: string[]): Promise<void> {
  if (files.length === 0) throw new Error('Usage: lymphoscope predict [--model <dir>] [--json] <image>...');
  await initRuntime();
  const { model, card } = await readModelDir(String(flags.model ?? DEFAULT_MODEL_DIR));
  for (const file of files) {
    const image = await decodeImage(await readFile(file));
    const analysis = await analyzeCell(model, card, image, { explain: false });
    const row = {
      file,
      label: analysis.isAll ? 'ALL' : 'NORMAL',
      probabilityAll: Number(analysis.probabilityAll.toFixed(4)),
      needsReview: analysis.needsReview,
      areaPx: analysis.morphology.areaPx,
      solidity: Number(analysis.morphology.solidity.toFixed(3)),
    };
    process.stdout.write(
      flags.json
        ? JSON.stringify(row) + '\n'
        : `${file}: ${row.label} p(ALL)=${row.probabilityAll}${row.needsReview ? ' (needs review)' : ''}\n`,
    );
  }
  model.dispose();
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) =>
  Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));

/**
 * `lymphoscope cv`: subject-grouped k-fold cross-validation. Each fold's threshold is chosen on a
 * validation part carved (by subject) out of that fold's training subjects; the test fold is never
 * used for any choice.
 */
export async function cvCommand(flags: Flags): Promise<void> {
  const data = String(flags.data ?? '');
  if (!data) throw new Error('Usage: lymphoscope cv --data <dir> [--folds 5] [--json] [training flags]');
  const config = configFromFlags(flags);
  const folds = num(flags, 'folds', 5);
  const tta = Boolean(flags.tta);
  await initRuntime();
  const progress = new Progress();
  const images = await loadFolder(data, config.inputSize);
  const results: Array<{ fold: number; test: BinaryMetrics; evaluation: Evaluation }> = [];
  for (const [index, fold] of kFoldBySubject(images, folds, config.seed).entries()) {
    const inner = splitBySubject(fold.train, {
      validationFraction: 0.25,
      testFraction: 0,
      seed: config.seed + index,
    });
    const { model, evaluation } = await fitAndEvaluate(
      config,
      { train: inner.train, validation: inner.validation, test: fold.test },
      { tta, progress, label: `fold ${index + 1}/${folds}` },
    );
    model.dispose();
    printMetrics(`fold ${index + 1}`, evaluation.test);
    results.push({ fold: index + 1, test: evaluation.test, evaluation });
  }
  const summary: Record<string, unknown> = {
    folds,
    n: images.length,
    architecture: config.architecture,
    tta,
  };
  for (const metric of [
    'weightedF1',
    'rocAuc',
    'sensitivity',
    'specificity',
    'accuracy',
    'balancedAccuracy',
  ] as const) {
    const values = results.map((r) => r.test[metric]).filter(Number.isFinite);
    summary[metric] = { mean: mean(values), std: std(values), folds: values.length };
    if (!flags.json)
      process.stdout.write(
        `${metric}: ${mean(values).toFixed(3)} ± ${std(values).toFixed(3)} over ${values.length} folds\n`,
      );
  }
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
}
