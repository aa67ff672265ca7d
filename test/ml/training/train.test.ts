import * as tf from '@tensorflow/tfjs';
import { ErrorCode } from '../../../src/errors';
import { loadModel } from '../../../src/ml/models/model-io';
import { Rng } from '../../../src/ml/rng';
import { initRuntime, liveTensors } from '../../../src/ml/runtime';
import {
  DEFAULT_TRAINING_CONFIG,
  deserializeCheckpoint,
  type Example,
  serializeCheckpoint,
  train,
  type TrainingCheckpoint,
  type TrainingConfig,
  type TrainProgress,
} from '../../../src/ml/training/train';

const SIZE = 32;

/**
 * Synthetic cells: a bright disc on a dark background, large for ALL (label 1) and small for normal, with
 * jittered centre, brightness and pixel noise. Learnable in a few epochs, not trivially.
 */
function discs(n: number, seed: number, positives = n / 2): Example[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, k) => {
    const label: 0 | 1 = k < positives ? 1 : 0;
    const radius = label ? 8 + 4 * rng.next() : 3 + 3 * rng.next();
    const cx = SIZE / 2 + (rng.next() - 0.5) * 8;
    const cy = SIZE / 2 + (rng.next() - 0.5) * 8;
    const brightness = 0.6 + 0.3 * rng.next();
    const pixels = new Float32Array(SIZE * SIZE * 3);
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const inside = (x - cx) ** 2 + (y - cy) ** 2 < radius ** 2;
        for (let c = 0; c < 3; c++) {
          pixels[(y * SIZE + x) * 3 + c] = Math.min(
            1,
            Math.max(0, (inside ? brightness : 0.1) + (rng.next() - 0.5) * 0.2),
          );
        }
      }
    }
    return { pixels, label };
  });
}

/** A horizontal flip and a brightness shift drawn from the training Rng, like the real augmentation. */
function flipAndShift(pixels: Float32Array, size: number, rng: Rng): Float32Array {
  const out = new Float32Array(pixels.length);
  const flip = rng.next() < 0.5;
  const shift = (rng.next() - 0.5) * 0.1;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const from = (y * size + (flip ? size - 1 - x : x)) * 3;
      for (let c = 0; c < 3; c++)
        out[(y * size + x) * 3 + c] = Math.min(1, Math.max(0, pixels[from + c] + shift));
    }
  }
  return out;
}

const data = discs(48, 7);
const trainSet = data.filter((_, i) => i % 6 !== 0);
const validationSet = data.filter((_, i) => i % 6 === 0);

const config = (overrides: Partial<TrainingConfig> = {}): TrainingConfig => ({
  ...DEFAULT_TRAINING_CONFIG,
  inputSize: SIZE,
  epochs: 3,
  batchSize: 8,
  patience: 5,
  ...overrides,
});

const weightsOf = async (bundle: TrainingCheckpoint['model']) => {
  const model = await loadModel(bundle);
  const values = model.getWeights().map((w) => Array.from(w.dataSync()));
  model.dispose();
  return values;
};

beforeAll(async () => {
  await initRuntime();
});

test('resuming from the checkpoint after epoch 1 gives the weights of an uninterrupted run', async () => {
  // lymphonet with augmentation and dropout exercises every source of randomness and batch-norm state.
  const cfg = config({ architecture: 'lymphonet', augment: true, classBalance: 'weights' });
  const uninterrupted = await train({
    config: cfg,
    train: trainSet,
    validation: validationSet,
    augment: flipAndShift,
  });
  uninterrupted.model!.dispose();

  const first = await train({
    config: cfg,
    train: trainSet,
    validation: validationSet,
    augment: flipAndShift,
    shouldPause: () => true,
  });
  expect(first.status).toBe('paused');
  // Through bytes, as a worker that died would read it back from S3.
  const stored = deserializeCheckpoint(serializeCheckpoint(first.checkpoint!));
  const resumed = await train({
    config: cfg,
    train: trainSet,
    validation: validationSet,
    augment: flipAndShift,
    resumeFrom: stored,
  });
  resumed.model!.dispose();

  expect(resumed.status).toBe('completed');
  expect(resumed.checkpoint!.epoch).toBe(3);
  const expected = await weightsOf(uninterrupted.checkpoint!.model);
  const actual = await weightsOf(resumed.checkpoint!.model);
  expect(actual).toHaveLength(expected.length);
  actual.forEach((values, i) => {
    const worst = values.reduce((m, v, j) => Math.max(m, Math.abs(v - expected[i][j])), 0);
    expect(worst).toBeLessThan(1e-6);
  });
  const strip = (h: typeof resumed.history) => h.map(({ seconds: _s, ...rest }) => rest);
  expect(strip(resumed.history)).toEqual(strip(uninterrupted.history));
});

test('cancel stops between batches, without a checkpoint and without leaking tensors', async () => {
  const before = liveTensors();
  let checks = 0;
  const progress: TrainProgress[] = [];
  const checkpoints: TrainingCheckpoint[] = [];
  const result = await train({
    config: config({ architecture: 'vanilla' }),
    train: trainSet,
    validation: validationSet,
    shouldCancel: async () => ++checks > 2,
    onProgress: (p) => progress.push(p),
    onCheckpoint: async (cp) => void checkpoints.push(cp),
  });
  expect(result.status).toBe('cancelled');
  expect(result.model).toBeUndefined();
  expect(progress.map((p) => [p.epoch, p.batch])).toEqual([
    [1, 1],
    [1, 2],
  ]);
  expect(checkpoints).toHaveLength(0);
  expect(liveTensors()).toBe(before);
});

test('pause stops after an epoch, with that epoch checkpointed', async () => {
  const before = liveTensors();
  const checkpoints: TrainingCheckpoint[] = [];
  const result = await train({
    config: config({ architecture: 'vanilla' }),
    train: trainSet,
    validation: validationSet,
    onCheckpoint: async (cp) => void checkpoints.push(cp),
    shouldPause: () => checkpoints.length >= 2,
  });
  expect(result.status).toBe('paused');
  expect(result.history.map((h) => h.epoch)).toEqual([1, 2]);
  expect(result.checkpoint).toBe(checkpoints[1]);
  expect(result.checkpoint!.epoch).toBe(2);
  expect(liveTensors()).toBe(before);
});

test('early stopping stops when validation loss stops improving and returns the best epoch', async () => {
  // Validation labels are the opposite of the training rule, so learning makes validation loss worse.
  const misleading = validationSet.map((e) => ({ ...e, label: (1 - e.label) as 0 | 1 }));
  const checkpoints: TrainingCheckpoint[] = [];
  const result = await train({
    config: config({ architecture: 'vanilla', epochs: 8, patience: 2, learningRate: 0.005 }),
    train: trainSet,
    validation: misleading,
    onCheckpoint: async (cp) => void checkpoints.push(cp),
  });
  expect(result.status).toBe('completed');
  expect(result.stoppedEarly).toBe(true);
  const losses = result.history.map((h) => h.valLoss);
  const bestEpoch = losses.indexOf(Math.min(...losses)) + 1;
  expect(result.bestEpoch).toBe(bestEpoch);
  expect(result.history.length).toBe(bestEpoch + 2);
  expect(result.history.length).toBeLessThan(8);

  // The returned model is the best epoch's, not the last one's.
  const best = await loadModel(checkpoints[bestEpoch - 1].model);
  const last = await loadModel(checkpoints[checkpoints.length - 1].model);
  const x = tf.tensor4d(Float32Array.from(misleading.flatMap((e) => Array.from(e.pixels))), [
    misleading.length,
    SIZE,
    SIZE,
    3,
  ]);
  const predict = (m: tf.LayersModel) => tf.tidy(() => Array.from((m.predict(x) as tf.Tensor).dataSync()));
  expect(predict(result.model!)).toEqual(predict(best));
  expect(predict(result.model!)).not.toEqual(predict(last));
  tf.dispose(x);
  [best, last, result.model!].forEach((m) => m.dispose());
});

test('batch-norm moving statistics match the training data even with few batches per epoch', async () => {
  // Two batches per epoch for four epochs: with tfjs's fixed momentum the moving statistics used at
  // inference would still be 40% (0.9) to 92% (0.99) their initial (0, 1), and predictions collapse.
  const result = await train({
    config: config({ architecture: 'lymphonet', batchSize: 20, epochs: 4, augment: false }),
    train: trainSet,
    validation: validationSet,
  });
  const model = result.model!;
  const probe = tf.model({
    inputs: model.inputs,
    outputs: model.getLayer('block1_conv').output as tf.SymbolicTensor,
  });
  const [, , movingMean] = model.getLayer('block1_bn').getWeights();
  const x = tf.tensor4d(Float32Array.from(trainSet.flatMap((e) => Array.from(e.pixels))), [
    trainSet.length,
    SIZE,
    SIZE,
    3,
  ]);
  const [actual, moving] = tf.tidy(() => [
    tf.mean(probe.predict(x) as tf.Tensor, [0, 1, 2]).arraySync() as number[],
    movingMean.arraySync() as number[],
  ]);
  const norm = (v: number[]) => Math.hypot(...v);
  expect(norm(actual.map((a, i) => a - moving[i])) / norm(actual)).toBeLessThan(0.15);
  tf.dispose(x);
  model.dispose();
});

test.each(['lymphonet', 'seed-2x2x1x1', 'majority'] as const)(
  '%s: after train() the only new tensors are the returned model weights',
  async (architecture) => {
    const size = architecture === 'seed-2x2x1x1' ? 52 : SIZE;
    const examples = size === SIZE ? trainSet.slice(0, 16) : resize(trainSet.slice(0, 16), size);
    const before = liveTensors();
    const result = await train({
      config: config({ architecture, inputSize: size, epochs: 2, augment: false }),
      train: examples,
      validation: examples.slice(0, 4),
    });
    expect(liveTensors() - before).toBe(result.model!.weights.length);
    result.model!.dispose();
    expect(liveTensors()).toBe(before);
  },
);

test('class balance by sampling draws both classes about equally from an imbalanced set', async () => {
  const imbalanced = discs(40, 3, 32);
  const labelOf = new Map(imbalanced.map((e) => [e.pixels, e.label]));
  const seen: number[] = [];
  const result = await train({
    config: config({ architecture: 'majority', classBalance: 'sampling', epochs: 5, augment: true }),
    train: imbalanced,
    validation: imbalanced.slice(0, 4),
    augment: (pixels) => (seen.push(labelOf.get(pixels)!), pixels),
  });
  result.model!.dispose();
  expect(seen).toHaveLength(200);
  const share = seen.filter((l) => l === 1).length / seen.length;
  expect(share).toBeGreaterThan(0.4);
  expect(share).toBeLessThan(0.6);
});

test('progress reports batches, a falling ETA and throughput', async () => {
  const progress: TrainProgress[] = [];
  const result = await train({
    config: config({ architecture: 'vanilla', epochs: 2 }),
    train: trainSet,
    validation: validationSet,
    onProgress: (p) => progress.push(p),
  });
  result.model!.dispose();
  expect(progress).toHaveLength(2 * Math.ceil(trainSet.length / 8));
  expect(progress[progress.length - 1]).toMatchObject({
    epoch: 2,
    epochs: 2,
    batch: 5,
    batchesPerEpoch: 5,
    etaSeconds: 0,
  });
  expect(progress.every((p) => p.imagesPerSecond > 0 && Number.isFinite(p.loss))).toBe(true);
});

test('bad input is refused with errors the caller can act on', async () => {
  const bad = (args: Parameters<typeof train>[0]) =>
    expect(train(args)).rejects.toMatchObject({ code: ErrorCode.BAD_USER_INPUT });
  await bad({ config: config(), train: [], validation: validationSet });
  await bad({
    config: config(),
    train: [{ pixels: new Float32Array(10), label: 1 }],
    validation: validationSet,
  });
  await bad({ config: config({ epochs: 0 }), train: trainSet, validation: validationSet });
  await bad({
    config: config({ classBalance: 'oversample' as never }),
    train: trainSet,
    validation: validationSet,
  });

  const paused = await train({
    config: config({ architecture: 'vanilla' }),
    train: trainSet,
    validation: validationSet,
    shouldPause: () => true,
  });
  await expect(
    train({
      config: config({ architecture: 'lymphonet' }),
      train: trainSet,
      validation: validationSet,
      resumeFrom: paused.checkpoint,
    }),
  ).rejects.toThrow(/different architecture/);
});

test('a checkpoint survives serialization byte for byte and rejects garbage', async () => {
  const result = await train({
    config: config({ architecture: 'vanilla' }),
    train: trainSet,
    validation: validationSet,
    shouldPause: () => true,
  });
  const cp = result.checkpoint!;
  const bytes = serializeCheckpoint(cp);
  const back = deserializeCheckpoint(bytes);
  expect(back.epoch).toBe(cp.epoch);
  expect(back.history).toEqual(cp.history);
  expect(back.rngState).toEqual(cp.rngState);
  expect(back.config).toEqual(cp.config);
  expect(Buffer.compare(back.model.weights, cp.model.weights)).toBe(0);
  expect(back.best.model).toBe(back.model);
  expect(Buffer.compare(back.optimizerWeights.data, cp.optimizerWeights.data)).toBe(0);
  expect(serializeCheckpoint(back).equals(bytes)).toBe(true);
  expect(() => deserializeCheckpoint(Buffer.from('not a checkpoint'))).toThrow(/checkpoint/);
  expect(() => deserializeCheckpoint(bytes.subarray(0, bytes.length - 10))).toThrow(/truncated/);
});

test('the Rng is deterministic and resumes from its state', () => {
  const a = new Rng(42);
  const head = Array.from({ length: 5 }, () => a.nextUint32());
  const state = a.state();
  const tail = Array.from({ length: 5 }, () => a.next());
  const b = new Rng(42);
  expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(head);
  const c = Rng.fromState(state);
  expect(Array.from({ length: 5 }, () => c.next())).toEqual(tail);
  expect(new Rng(43).nextUint32()).not.toBe(head[0]);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[a.int(4)]++;
  counts.forEach((n) => expect(n).toBeGreaterThan(900));
  expect(() => Rng.fromState([0, 0, 0, 0])).toThrow();
});

/** Nearest-neighbour resize of the synthetic examples, for the seed net's larger minimum input. */
function resize(examples: Example[], size: number): Example[] {
  return examples.map(({ pixels, label }) => {
    const out = new Float32Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const from = (Math.floor((y * SIZE) / size) * SIZE + Math.floor((x * SIZE) / size)) * 3;
        out.set(pixels.subarray(from, from + 3), (y * size + x) * 3);
      }
    }
    return { pixels: out, label };
  });
}
