import * as tf from '@tensorflow/tfjs';
import { badInput } from '../../errors';
import { buildModel, createOptimizer } from '../models/architectures';
import { recomputeBatchNormStatistics } from '../models/batch-norm';
import { acceleratedPredictor, acceleratedStep, acceleratedTrainer } from '../onnx/accelerated-training';
import { loadModel, serializeModel } from '../models/model-io';
import { Rng } from '../rng';
import { initRuntime } from '../runtime';
import {
  decodeCheckpoint,
  type EpochRecord,
  restoreOptimizer,
  saveOptimizer,
  type TrainingCheckpoint,
} from './checkpoint';

import { type TrainingConfig, validateTrainingConfig } from './training-config';

export { serializeCheckpoint } from './checkpoint';
export type { EpochRecord, OptimizerState, TrainingCheckpoint } from './checkpoint';
export {
  DEFAULT_TRAINING_CONFIG,
  MAX_BATCH_SIZE,
  RECIPE_LEVERS_OFF,
  type TrainingConfig,
  validateTrainingConfig,
} from './training-config';

export interface Example {
  /** inputSize * inputSize * 3 values, HWC RGB in [0, 1]. */
  pixels: Float32Array;
  /** 1 = ALL (blast), 0 = normal (hem). */
  label: 0 | 1;
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batchesPerEpoch: number;
  /** Mean training loss of the epoch so far. */
  loss: number;
  etaSeconds: number | null;
  imagesPerSecond: number;
}

export type Augment = (pixels: Float32Array, size: number, rng: Rng) => Float32Array;

export interface TrainArgs {
  config: TrainingConfig;
  train: Example[];
  validation: Example[];
  resumeFrom?: TrainingCheckpoint;
  /** Called after every batch; throttle in the callback. */
  onProgress?: (p: TrainProgress) => void;
  /** Called after every epoch and awaited, so a checkpoint is durable before training goes on. */
  onCheckpoint?: (cp: TrainingCheckpoint) => Promise<void>;
  /** Checked before every batch. */
  shouldCancel?: () => boolean | Promise<boolean>;
  /** Checked after every epoch's checkpoint (a Lambda's time budget): stop there, to resume later. */
  shouldPause?: () => boolean | Promise<boolean>;
  /** Applied to each training image when config.augment; default identity. */
  augment?: Augment;
  /** Hears, once and before the first batch, why this run trains on TF.js rather than onnxruntime. */
  onTrainingFallback?: (reason: string) => void;
}

export interface TrainResult {
  status: 'completed' | 'cancelled' | 'paused';
  /** On 'completed': the model with the best epoch's weights; the caller disposes it. */
  model?: tf.LayersModel;
  history: EpochRecord[];
  /** 0 when no epoch completed. */
  bestEpoch: number;
  stoppedEarly: boolean;
  /** The last checkpoint (on 'paused' and 'completed'). */
  checkpoint?: TrainingCheckpoint;
  /** What computed the forward and backward passes: onnxruntime where it loads, else the TF.js backend. */
  trainingRuntime: 'onnxruntime' | 'tfjs';
  /**
   * Why the run fell back to TF.js (about 5.6x slower) though onnxruntime was asked for: a layer the
   * training graph lacks (src/ml/models/layers/registry.ts) or onnxruntime failing. Absent otherwise.
   */
  trainingFallback?: string;
}

export const MAX_EXAMPLES = 200_000;
const EPSILON = 1e-7;
/** Settings a resumed run must share with the checkpoint for "resume == uninterrupted" to hold. */
const RESUME_INVARIANTS = [
  'architecture',
  'inputSize',
  'batchSize',
  'learningRate',
  'classBalance',
  'augment',
  'seed',
  'colourJitter',
] as const;

/**
 * Trains with our own batch loop (not model.fit) so that cancellation between batches, pausing between
 * epochs and exact resumption work: one seeded Rng drives shuffling, sampling, augmentation and dropout
 * masks, and the checkpoint after each epoch holds weights, optimizer slots, Rng state and early-stopping
 * state. Resuming from the checkpoint of epoch k gives the weights of an uninterrupted run.
 */
export async function train(args: TrainArgs): Promise<TrainResult> {
  const config = validateTrainingConfig(args.config);
  validateExamples('train', args.train, config.inputSize);
  validateExamples('validation', args.validation, config.inputSize);
  if (args.resumeFrom) checkResumable(config, args.resumeFrom);
  await initRuntime();

  const trainee = await prepareTrainee(args, config);
  let keepModel = false;
  try {
    const run = await resumeRun(config, trainee, args.resumeFrom);
    for (let epoch = run.epoch + 1; epoch <= config.epochs && !run.stoppedEarly; epoch++) {
      const epochStart = performance.now();
      const batches = await trainEpochBatches(args, config, trainee, run, epoch);
      if (!batches) return { status: 'cancelled', ...ended(run, trainee, false) };
      const checkpoint = await closeEpoch(args, config, trainee, run, epoch, batches, epochStart);
      await args.onCheckpoint?.(checkpoint);
      if (!run.stoppedEarly && epoch < config.epochs && (await args.shouldPause?.())) {
        return { status: 'paused', checkpoint, ...ended(run, trainee, false) };
      }
    }
    await settleServedWeights(args, config, trainee, run);
    keepModel = true;
    return {
      status: 'completed',
      model: trainee.model,
      checkpoint: run.checkpoint,
      ...ended(run, trainee, run.stoppedEarly),
    };
  } finally {
    await trainee.accelerator?.dispose();
    trainee.optimizer.dispose();
    if (!keepModel) trainee.model.dispose();
  }
}

/** The network being trained, with what every batch needs of it. */
interface Trainee {
  /** Replaced by the best epoch's weights at the end. */
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  /** Forward and backward in onnxruntime (src/ml/onnx/trainer.ts); null: TF.js. */
  accelerator: Awaited<ReturnType<typeof acceleratedTrainer>>;
  /** Why onnxruntime was not used though asked for. */
  fallback: string | undefined;
  variables: tf.Variable[];
  dropouts: tf.layers.Layer[];
  norms: tf.layers.Layer[];
  classWeight: [number, number];
  batchesPerEpoch: number;
}

/** Where the run stands: what a checkpoint holds, plus this run's throughput for the ETA. */
interface RunState {
  /** The last epoch completed. */
  epoch: number;
  rng: Rng;
  history: EpochRecord[];
  best: TrainingCheckpoint['best'] | undefined;
  epochsWithoutImprovement: number;
  checkpoint: TrainingCheckpoint | undefined;
  stoppedEarly: boolean;
  /** Batches of this run only, so a resumed run's estimate is not skewed by the time it was paused. */
  throughput: { batches: number; images: number; seconds: number };
}

/** The model (the checkpoint's, or a new one), its optimizer and the runtime its passes run on. */
async function prepareTrainee(args: TrainArgs, config: TrainingConfig): Promise<Trainee> {
  const cp = args.resumeFrom;
  const prior = args.train.filter((e) => e.label === 1).length / args.train.length;
  const model = cp
    ? await loadModel(cp.model)
    : buildModel(config.architecture, config.inputSize, config.seed, { prior: clampPrior(prior) });
  const optimizer = createOptimizer(config.architecture, config.learningRate);
  // Forward and backward passes in onnxruntime where it can (src/ml/onnx/trainer.ts, docs/PERFORMANCE.md).
  let fallback: string | undefined;
  const accelerator = await acceleratedTrainer(model, (reason) => {
    fallback = reason;
    args.onTrainingFallback?.(reason);
  });
  return {
    model,
    optimizer,
    accelerator,
    fallback,
    variables: model.trainableWeights.map((w) => w.read() as tf.Variable),
    dropouts: model.layers.filter((l) => l.getClassName() === 'Dropout'),
    norms: model.layers.filter((l) => l.getClassName() === 'BatchNormalization'),
    classWeight: classWeights(args.train, config.classBalance),
    batchesPerEpoch: Math.ceil(args.train.length / config.batchSize),
  };
}

/** A new run's state, or the checkpoint's (optimizer slots restored into the trainee's optimizer). */
async function resumeRun(
  config: TrainingConfig,
  trainee: Trainee,
  cp: TrainingCheckpoint | undefined,
): Promise<RunState> {
  if (cp) await restoreOptimizer(trainee.optimizer, cp.optimizerWeights);
  const epochsWithoutImprovement = cp?.epochsWithoutImprovement ?? 0;
  return {
    epoch: cp?.epoch ?? 0,
    rng: cp ? Rng.fromState(cp.rngState) : new Rng(config.seed),
    history: cp ? [...cp.history] : [],
    best: cp?.best,
    epochsWithoutImprovement,
    checkpoint: cp,
    stoppedEarly: epochsWithoutImprovement >= config.patience,
    throughput: { batches: 0, images: 0, seconds: 0 },
  };
}

/** One epoch's batches, each a training step; null when cancelled between two of them. */
async function trainEpochBatches(
  args: TrainArgs,
  config: TrainingConfig,
  trainee: Trainee,
  run: RunState,
  epoch: number,
): Promise<{ images: number; lossSum: number; correct: number } | null> {
  const { batchesPerEpoch } = trainee;
  const { throughput } = run;
  const order = epochOrder(args.train, config.classBalance, run.rng);
  let lossSum = 0;
  let correct = 0;
  for (let b = 0; b < batchesPerEpoch; b++) {
    if (await args.shouldCancel?.()) return null;
    const batchStart = performance.now();
    // Equal batches (38 images: 19 + 19, not 32 + 6): a tiny last batch gives batch norm noisy statistics.
    const end = Math.round(((b + 1) * order.length) / batchesPerEpoch);
    const indices = order.slice(Math.round((b * order.length) / batchesPerEpoch), end);
    // A fresh dropout mask per batch, drawn from the training Rng so that a resumed run redraws it.
    for (const layer of trainee.dropouts) (layer as unknown as { seed: number }).seed = run.rng.seed();
    const momentum = batchNormMomentum((epoch - 1) * batchesPerEpoch + b, batchesPerEpoch);
    for (const layer of trainee.norms) (layer as unknown as { momentum: number }).momentum = momentum;
    const batch = makeBatch(
      indices.map((i) => args.train[i]),
      config,
      run.rng,
      args.augment,
    );
    const { model, optimizer, variables, classWeight, accelerator } = trainee;
    const outcome = accelerator
      ? await acceleratedStep(accelerator, optimizer, variables, batch, classWeight)
      : trainStep(model, optimizer, variables, batch, classWeight);
    lossSum += outcome.loss * indices.length;
    correct += outcome.correct;
    throughput.batches += 1;
    throughput.images += indices.length;
    throughput.seconds += (performance.now() - batchStart) / 1000;
    const remaining = batchesPerEpoch - (b + 1) + (config.epochs - epoch) * batchesPerEpoch;
    args.onProgress?.({
      epoch,
      epochs: config.epochs,
      batch: b + 1,
      batchesPerEpoch,
      loss: lossSum / end,
      etaSeconds: Math.round((throughput.seconds / throughput.batches) * remaining),
      imagesPerSecond: throughput.images / Math.max(throughput.seconds, 1e-9),
    });
  }
  return { images: order.length, lossSum, correct };
}

/** Validation, the epoch's record, the best epoch and early stopping; answers the epoch's checkpoint. */
async function closeEpoch(
  args: TrainArgs,
  config: TrainingConfig,
  trainee: Trainee,
  run: RunState,
  epoch: number,
  batches: { images: number; lossSum: number; correct: number },
  epochStart: number,
): Promise<TrainingCheckpoint> {
  const validation = await evaluate(trainee.model, args.validation, config, trainee.accelerator);
  run.history.push({
    epoch,
    loss: batches.lossSum / batches.images,
    accuracy: batches.correct / batches.images,
    valLoss: validation.loss,
    valAccuracy: validation.accuracy,
    seconds: (performance.now() - epochStart) / 1000,
  });
  const bundle = await serializeModel(trainee.model);
  if (!run.best || validation.loss < run.best.valLoss) {
    run.best = { epoch, valLoss: validation.loss, model: bundle };
    run.epochsWithoutImprovement = 0;
  } else {
    run.epochsWithoutImprovement += 1;
  }
  run.stoppedEarly = run.epochsWithoutImprovement >= config.patience && epoch < config.epochs;
  run.epoch = epoch;
  run.checkpoint = {
    epoch,
    model: bundle,
    optimizerWeights: await saveOptimizer(trainee.optimizer),
    best: run.best,
    epochsWithoutImprovement: run.epochsWithoutImprovement,
    history: [...run.history],
    rngState: run.rng.state(),
    config,
  };
  return run.checkpoint;
}

/** The served weights: the best epoch's, with batch norm's statistics recomputed where the recipe says. */
async function settleServedWeights(
  args: TrainArgs,
  config: TrainingConfig,
  trainee: Trainee,
  run: RunState,
): Promise<void> {
  if (run.best && run.checkpoint && run.best.epoch !== run.checkpoint.epoch) {
    trainee.model.dispose();
    trainee.model = await loadModel(run.best.model);
  }
  if (config.recomputeBatchNorm) {
    await recomputeBatchNormStatistics(
      trainee.model,
      args.train.map((e) => e.pixels),
      config.inputSize,
      config.batchSize,
    );
  }
}

/** The fields every outcome reports: the history, the best epoch and what trained. */
function ended(
  run: RunState,
  trainee: Trainee,
  stoppedEarly: boolean,
): Pick<TrainResult, 'history' | 'bestEpoch' | 'stoppedEarly' | 'trainingRuntime' | 'trainingFallback'> {
  return {
    history: run.history,
    bestEpoch: run.best?.epoch ?? 0,
    stoppedEarly,
    trainingRuntime: trainee.accelerator ? 'onnxruntime' : 'tfjs',
    ...(trainee.fallback ? { trainingFallback: trainee.fallback } : {}),
  };
}

interface Batch {
  pixels: Float32Array;
  labels: Float32Array;
  weights: Float32Array;
  size: number;
}

function validateExamples(name: string, examples: Example[], inputSize: number): void {
  if (!Array.isArray(examples) || examples.length === 0) throw badInput(`The ${name} set is empty.`);
  if (examples.length > MAX_EXAMPLES)
    throw badInput(`The ${name} set has ${examples.length} images; the limit is ${MAX_EXAMPLES}.`);
  const length = inputSize * inputSize * 3;
  examples.forEach((e, i) => {
    if (!(e.pixels instanceof Float32Array) || e.pixels.length !== length) {
      throw badInput(
        `${name}[${i}] must have ${length} float32 pixel values (${inputSize}x${inputSize} RGB).`,
      );
    }
    if (e.label !== 0 && e.label !== 1)
      throw badInput(`${name}[${i}] has label ${String(e.label)}; expected 0 or 1.`);
  });
}

function checkResumable(config: TrainingConfig, cp: TrainingCheckpoint): void {
  const changed = RESUME_INVARIANTS.filter((k) => cp.config[k] !== config[k]);
  if (changed.length > 0) {
    throw badInput(`Cannot resume: the checkpoint was trained with different ${changed.join(', ')}.`);
  }
}

/**
 * Inference uses batch norm's moving statistics. With a fixed momentum (tfjs: 0.99) a small data set's few
 * batches per epoch leave them near their initial (0, 1) for dozens of epochs and every prediction
 * collapses to one class: on the 63-image C-NMC sample lymphonet stayed at chance with 0.9. So they are a
 * plain running mean over the first steps (momentum t/(t+1) at step t: the first batch sets them), then an
 * exponential average over about one epoch (1 - 1/batchesPerEpoch, kept within 0.5 .. 0.99).
 */
function batchNormMomentum(step: number, batchesPerEpoch: number): number {
  const target = 1 - 1 / Math.min(Math.max(batchesPerEpoch, 2), 100);
  return Math.min(target, step / (step + 1));
}

/** A training set of one class still gets a majority model that answers with confidence, not certainty. */
function clampPrior(prior: number): number {
  return Math.min(Math.max(prior, 0.01), 0.99);
}

/** Loss weight per class: inverse frequency, scaled so a balanced set gets 1 for both. */
function classWeights(examples: Example[], balance: TrainingConfig['classBalance']): [number, number] {
  if (balance !== 'weights') return [1, 1];
  const positives = examples.filter((e) => e.label === 1).length;
  const negatives = examples.length - positives;
  if (positives === 0 || negatives === 0) return [1, 1];
  return [examples.length / (2 * negatives), examples.length / (2 * positives)];
}

/** The example indices of one epoch: a shuffle, or as many class-balanced draws (with replacement). */
function epochOrder(examples: Example[], balance: TrainingConfig['classBalance'], rng: Rng): number[] {
  if (balance === 'sampling') {
    const byClass: [number[], number[]] = [[], []];
    examples.forEach((e, i) => byClass[e.label].push(i));
    if (byClass[0].length > 0 && byClass[1].length > 0) {
      return examples.map(() => {
        const pool = byClass[rng.next() < 0.5 ? 0 : 1];
        return pool[rng.int(pool.length)];
      });
    }
  }
  return rng.shuffle(examples.map((_, i) => i));
}

function makeBatch(
  examples: Example[],
  config: TrainingConfig,
  rng: Rng,
  augment: Augment | undefined,
): Batch {
  const length = config.inputSize * config.inputSize * 3;
  const batch: Batch = {
    pixels: new Float32Array(examples.length * length),
    labels: new Float32Array(examples.length),
    weights: new Float32Array(examples.length),
    size: examples.length,
  };
  examples.forEach((example, i) => {
    const pixels =
      config.augment && augment ? augment(example.pixels, config.inputSize, rng) : example.pixels;
    if (pixels.length !== length)
      throw new Error(`augment returned ${pixels.length} values; expected ${length}.`);
    batch.pixels.set(pixels, i * length);
    batch.labels[i] = example.label;
  });
  return batch;
}

function trainStep(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  batch: Batch,
  classWeight: [number, number],
): { loss: number; correct: number } {
  batch.labels.forEach((label, i) => (batch.weights[i] = classWeight[label]));
  const [loss, correct] = tf.tidy(() => {
    const size = model.inputs[0].shape[1] as number;
    const x = tf.tensor4d(batch.pixels, [batch.size, size, size, 3]);
    const y = tf.tensor2d(batch.labels, [batch.size, 1]);
    const w = tf.tensor2d(batch.weights, [batch.size, 1]);
    let hits: tf.Tensor | undefined;
    const objective = () => {
      const p = model.apply(x, { training: true }) as tf.Tensor;
      hits = tf.keep(countCorrect(p, y));
      return tf.mean(tf.mul(binaryCrossEntropy(p, y), w)) as tf.Scalar;
    };
    // The majority baseline has nothing to train; its loss is still reported.
    const value = variables.length > 0 ? optimizer.minimize(objective, true, variables)! : objective();
    return [value, hits!];
  });
  try {
    return { loss: loss.dataSync()[0], correct: correct.dataSync()[0] };
  } finally {
    tf.dispose([loss, correct]);
  }
}

/** Per-example binary cross-entropy of probabilities, clipped as Keras does. */
function binaryCrossEntropy(p: tf.Tensor, y: tf.Tensor): tf.Tensor {
  const clipped = tf.clipByValue(p, EPSILON, 1 - EPSILON);
  return tf.neg(tf.add(tf.mul(y, tf.log(clipped)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, clipped)))));
}

function countCorrect(p: tf.Tensor, y: tf.Tensor): tf.Tensor {
  return tf.sum(tf.cast(tf.equal(tf.cast(tf.greaterEqual(p, 0.5), 'float32'), y), 'float32'));
}

/**
 * Unweighted loss and accuracy at 0.5, inference mode (batch-norm moving statistics, no dropout). The
 * forward pass runs on onnxruntime where training does (an exported session per call), else in TF.js;
 * loss and hits are computed by the same TF.js ops either way.
 */
async function evaluate(
  model: tf.LayersModel,
  examples: Example[],
  config: TrainingConfig,
  trainer: Trainee['accelerator'] = null,
) {
  let lossSum = 0;
  let correct = 0;
  const length = config.inputSize * config.inputSize * 3;
  const predictor = await acceleratedPredictor(model, trainer);
  try {
    for (let start = 0; start < examples.length; start += config.batchSize) {
      const chunk = examples.slice(start, start + config.batchSize);
      const pixels = new Float32Array(chunk.length * length);
      chunk.forEach((e, i) => pixels.set(e.pixels, i * length));
      const labels = Float32Array.from(chunk, (e) => e.label);
      const probabilities = predictor ? await predictor.predict(pixels, chunk.length) : null;
      const [loss, hits] = tf.tidy(() => {
        const y = tf.tensor2d(labels, [chunk.length, 1]);
        const p = probabilities
          ? tf.tensor2d(probabilities, [chunk.length, 1])
          : (model.predict(
              tf.tensor4d(pixels, [chunk.length, config.inputSize, config.inputSize, 3]),
            ) as tf.Tensor);
        return [tf.sum(binaryCrossEntropy(p, y)), countCorrect(p, y)];
      });
      lossSum += (await loss.data())[0];
      correct += (await hits.data())[0];
      tf.dispose([loss, hits]);
    }
  } finally {
    await predictor?.dispose();
  }
  return { loss: lossSum / examples.length, accuracy: correct / examples.length };
}

/** Reads a checkpoint written by serializeCheckpoint, validating its training config. */
export function deserializeCheckpoint(buf: Buffer): TrainingCheckpoint {
  const cp = decodeCheckpoint(buf);
  return { ...cp, config: validateTrainingConfig(cp.config) };
}
