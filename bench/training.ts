import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildModel, estimateFlops } from '../src/ml/models/architectures';
import { defaultOnnxThreads } from '../src/ml/onnx/session';
import { configureMl, mlSettings } from '../src/ml/settings';
import { OnnxTrainer, type TrainingBatch } from '../src/ml/onnx/trainer';
import { augmenterFor } from '../src/ml/image/preprocess';
import { syntheticCell } from '../src/ml/data/synthetic';
import { DEFAULT_TRAINING_CONFIG, type Example, train } from '../src/ml/training/train';
import { trainingStepOf } from './kernels';
import { jsonLinesOfChild } from './child-json';
import { buildReferenceNet } from './reference-net';
import { randomValues, round, timeAsync } from './stats';

export interface TrainingRow {
  model: string;
  runtime: string;
  threads: number;
  how: string;
  data: string;
  imagesPerSecond: number;
  /** Forward FLOPs x 3 (the backward pass costs about twice the forward) x images/s. */
  gflopsPerSecond: number;
}

/** Synthetic C-NMC-like cells drawn at the model's input size (src/ml/data/synthetic.ts), half of each class. */
export function syntheticExamples(count: number, size: number, firstSeed: number): Example[] {
  return Array.from({ length: count }, (_, i) => {
    const label = (i % 2) as 0 | 1;
    const cell = syntheticCell(firstSeed + i, { label, size });
    return { pixels: Float32Array.from(cell.data, (v) => v / 255), label };
  });
}

/** `count` synthetic cells from seed `firstSeed` in one batch as train.ts assembles it, every weight 1. */
export function syntheticBatch(count: number, size: number, firstSeed: number): TrainingBatch {
  const examples = syntheticExamples(count, size, firstSeed);
  const length = size * size * 3;
  const pixels = new Float32Array(count * length);
  examples.forEach((e, i) => pixels.set(e.pixels, i * length));
  return {
    pixels,
    labels: Float32Array.from(examples, (e) => e.label),
    weights: new Float32Array(count).fill(1),
    size: count,
  };
}

const SIZE = 96;
const BATCH = 32;

/** train() on lymphonet, 1 epoch at 96x96 without augmentation, with the training runtime given. */
export async function trainOnce(runtime: 'onnxruntime' | 'tfjs', batches: number): Promise<TrainingRow> {
  const previous = configureMl({ ...mlSettings(), trainingRuntime: runtime });
  try {
    const examples = syntheticExamples(BATCH * batches, SIZE, 1);
    const validation = syntheticExamples(BATCH, SIZE, 10_000);
    let imagesPerSecond = 0;
    const result = await train({
      config: { ...DEFAULT_TRAINING_CONFIG, inputSize: SIZE, epochs: 1, augment: false },
      train: examples,
      validation,
      onProgress: (p) => (imagesPerSecond = p.imagesPerSecond),
    });
    const gflop = estimateFlops(result.model!) / 1e9;
    result.model?.dispose();
    return {
      model: 'lymphonet',
      runtime,
      // train()'s onnxruntime session uses every core the process may use.
      threads: runtime === 'tfjs' ? 1 : defaultOnnxThreads(),
      how: `train(), 1 epoch of ${batches} batches of ${BATCH}`,
      data: 'synthetic cells (src/ml/data/synthetic.ts) at 96x96',
      imagesPerSecond: round(imagesPerSecond),
      gflopsPerSecond: round(imagesPerSecond * 3 * gflop),
    };
  } finally {
    configureMl(previous);
  }
}

/**
 * What one epoch costs a user of the default recipe (DEFAULT_TRAINING_CONFIG: augmentation with colour
 * jitter, as the training worker applies it, then the validation pass), in seconds per 10,000 training
 * images: the recipe holds out 20% of subjects for validation and 20% for test, so 10,000 training
 * images come with about 3,333 validation images. Two epochs; the second (warm) epoch is the figure.
 */
export async function userEpoch(batches: number): Promise<TrainingRow & { epochOf10000Seconds: number }> {
  const count = BATCH * batches;
  const examples = syntheticExamples(count, SIZE, 1);
  const validation = syntheticExamples(Math.round(count / 3), SIZE, 10_000);
  const config = { ...DEFAULT_TRAINING_CONFIG, inputSize: SIZE, epochs: 2, patience: 10 };
  const result = await train({ config, train: examples, validation, augment: augmenterFor(config) });
  const gflop = estimateFlops(result.model!) / 1e9;
  result.model?.dispose();
  const seconds = result.history[result.history.length - 1].seconds;
  const imagesPerSecond = count / seconds;
  return {
    model: 'lymphonet',
    runtime: mlSettings().trainingRuntime,
    threads: defaultOnnxThreads(),
    how: `train(), the default recipe's epoch: ${count} images augmented + ${validation.length} validated`,
    data: 'synthetic cells (src/ml/data/synthetic.ts) at 96x96',
    imagesPerSecond: round(imagesPerSecond),
    gflopsPerSecond: round(imagesPerSecond * 3 * gflop),
    epochOf10000Seconds: round((seconds * 10_000) / count),
  };
}

/** Bare steps of `model` in onnxruntime (forward, backward, Adam in TF.js) on a fixed random batch. */
async function onnxSteps(
  name: string,
  model: tf.LayersModel,
  threads: number,
  repetitions: number,
): Promise<TrainingRow> {
  const trainer = await OnnxTrainer.create(model, { threads });
  const optimizer = tf.train.adam(0.001);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const batch = {
    pixels: randomValues(BATCH * SIZE * SIZE * 3, 9),
    labels: Float32Array.from({ length: BATCH }, (_, i) => i % 2),
    weights: new Float32Array(BATCH).fill(1),
    size: BATCH,
  };
  try {
    const ms = await timeAsync(() => trainer.step(batch, optimizer, variables), repetitions);
    const imagesPerSecond = (BATCH * 1000) / ms;
    return {
      model: name,
      runtime: 'onnxruntime',
      threads,
      how: `training step of batch ${BATCH} (forward, backward, Adam)`,
      data: 'random pixels at 96x96',
      imagesPerSecond: round(imagesPerSecond),
      gflopsPerSecond: round(imagesPerSecond * 3 * (estimateFlops(model) / 1e9)),
    };
  } finally {
    optimizer.dispose();
    await trainer.dispose();
  }
}

/**
 * userEpoch, then train() alone on onnxruntime, in a process of their own (bench/training-epoch.ts
 * --with-loop), as the training worker runs them. In the bench's own process, after its inference and
 * end-to-end sections (a heap of about 2 GB), the same epoch ran 0.92x, 0.95x and 1.02x as fast in three
 * runs: no steady difference, but not the process the figure is about; benchTraining prints it too.
 */
async function inFreshProcess(batches: number): Promise<TrainingRow[]> {
  const script = path.join(__dirname, 'training-epoch.ts');
  const lines = await jsonLinesOfChild('bench/training-epoch.ts', [
    ...process.execArgv,
    script,
    String(batches),
    '--with-loop',
  ]);
  if (lines.length !== 2) throw new Error(`bench/training-epoch.ts printed ${lines.length} rows, not 2.`);
  return lines.map((line) => {
    const { loadavg: _load, ...row } = line as TrainingRow & { loadavg?: number[] };
    return { ...row, how: `${row.how} (a fresh process)` };
  });
}

/**
 * Training throughput at 96x96, batch 32: first a user's epoch of the default recipe (userEpoch); then
 * the product's loop alone, train() in src/ml/training/train.ts (batch assembly, forward, backward, optimizer,
 * batch-norm bookkeeping; no augmentation, validation excluded), on lymphonet with each training runtime; then bare steps of lymphonet and of the reference network in TF.js and in
 * onnxruntime with 1 and 2 threads.
 */
export async function benchTraining(quick: boolean): Promise<TrainingRow[]> {
  const batches = quick ? 4 : 10;
  const inThisProcess = await userEpoch(batches);
  const rows: TrainingRow[] = [
    ...(await inFreshProcess(batches)),
    { ...inThisProcess, how: `the same epoch in the bench's own process, after the sections above` },
    await trainOnce('tfjs', batches),
  ];

  const reference = buildReferenceNet(SIZE);
  const referenceGflop = estimateFlops(reference) / 1e9;
  const step = trainingStepOf(reference, tf.train.adam(0.001));
  const ms = await timeAsync(step.step, quick ? 2 : 3);
  step.dispose();
  rows.push({
    model: 'reference-6x32',
    runtime: 'tfjs',
    threads: 1,
    how: `training step of batch ${BATCH} (forward, backward, Adam)`,
    data: 'random pixels at 96x96',
    imagesPerSecond: round((BATCH * 1000) / ms),
    gflopsPerSecond: round(((BATCH * 1000) / ms) * 3 * referenceGflop),
  });
  for (const threads of [1, 2]) {
    for (const [name, build] of [
      ['lymphonet', () => buildModel('lymphonet', SIZE, 1)],
      ['reference-6x32', () => buildReferenceNet(SIZE)],
    ] as const) {
      const model = build();
      rows.push(await onnxSteps(name, model, threads, quick ? 3 : 6));
      model.dispose();
    }
  }
  return rows;
}
