import * as tf from '@tensorflow/tfjs';
import { decodeImage } from '../../src/ml/image/decode';
import { toModelInput } from '../../src/ml/image/preprocess';
import { OnnxTrainer } from '../../src/ml/onnx/trainer';
import { sampleImages } from './sample';

/**
 * What the ONNX graphs are checked against: TF.js itself, on the same weights and the same real cells.
 * Shared by test/ml/models/layers (one layer type at a time) and test/ml/onnx (whole architectures).
 */
export interface ReferenceBatch {
  pixels: Float32Array;
  labels: Float32Array;
  weights: Float32Array;
  size: number;
}

/** `count` real C-NMC cells (data/cnmc-sample, both classes) at `size`, with labels and class weights. */
export async function realBatch(size: number, count: number): Promise<ReferenceBatch> {
  const samples = sampleImages()
    .filter((_, i) => i % Math.floor(63 / count) === 0)
    .slice(0, count);
  const pixels = new Float32Array(count * size * size * 3);
  const labels = new Float32Array(count);
  const weights = new Float32Array(count);
  for (const [i, s] of samples.entries()) {
    pixels.set(await toModelInput(await decodeImage(s.bytes), size), i * size * size * 3);
    labels[i] = s.label === 'ALL' ? 1 : 0;
    weights[i] = s.label === 'ALL' ? 0.9 : 1.1;
  }
  return { pixels, labels, weights, size: count };
}

/** train.ts's clipping of probabilities before the logarithm. */
const EPSILON = 1e-7;

/** train.ts's objective (class-weighted binary cross-entropy), differentiated by TF.js. */
export function tfjsGradients(model: tf.LayersModel, batch: ReferenceBatch, inputSize: number) {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return tf.variableGrads(() => {
    const x = tf.tensor4d(batch.pixels, [batch.size, inputSize, inputSize, 3]);
    const y = tf.tensor2d(batch.labels, [batch.size, 1]);
    const w = tf.tensor2d(batch.weights, [batch.size, 1]);
    const p = tf.clipByValue(model.apply(x, { training: true }) as tf.Tensor, EPSILON, 1 - EPSILON);
    const crossEntropy = tf.neg(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))));
    return tf.mean(tf.mul(crossEntropy, w)) as tf.Scalar;
  }, variables);
}

/** ||expected - actual|| / ||expected||. */
export function relativeError(expected: ArrayLike<number>, actual: ArrayLike<number>): number {
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    difference += (expected[i] - actual[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return Math.sqrt(difference / Math.max(norm, 1e-20));
}

/** The same training state on two models built alike: a fixed dropout seed and batch-norm momentum. */
export function setTrainingState(model: tf.LayersModel): void {
  for (const layer of model.layers) {
    if (layer.getClassName() === 'Dropout') (layer as unknown as { seed: number }).seed = 4242;
    if (layer.getClassName() === 'BatchNormalization')
      (layer as unknown as { momentum: number }).momentum = 0.5;
  }
}

/**
 * One onnxruntime training pass of `accelerated` against TF.js on `reference` (built alike, the same training
 * state): the same loss, every gradient within 1e-3 and the batch-norm moving statistics within 1e-4.
 */
export async function expectTrainerMatchesTfjs(
  trainer: OnnxTrainer,
  models: { reference: tf.LayersModel; accelerated: tf.LayersModel },
  batch: ReferenceBatch,
  inputSize: number,
): Promise<void> {
  const { reference, accelerated } = models;
  const expected = tfjsGradients(reference, batch, inputSize);
  const variables = accelerated.trainableWeights.map((w) => w.read() as tf.Variable);
  const actual = await trainer.gradients(batch, variables);
  try {
    expect(actual.loss).toBeCloseTo(expected.value.dataSync()[0], 5);
    const errors = reference.trainableWeights.map((w, i) => ({
      weight: w.originalName,
      error: relativeError(
        expected.grads[(w.read() as tf.Variable).name].dataSync(),
        actual.gradients[variables[i].name].dataSync(),
      ),
    }));
    expect(errors.filter((e) => !(e.error < 1e-3))).toEqual([]);
    reference.weights.forEach((w, i) => {
      if (w.trainable) return;
      expect(relativeError(w.read().dataSync(), accelerated.weights[i].read().dataSync())).toBeLessThan(1e-4);
    });
  } finally {
    tf.dispose([expected.value, ...Object.values(expected.grads), ...Object.values(actual.gradients)]);
  }
}

/**
 * Two models from `build`, in the same training state: one onnxruntime training pass of the second (1
 * thread) matches TF.js on the first (expectTrainerMatchesTfjs). Both models and the trainer are disposed.
 */
export async function expectTrainsAsTfjs(
  build: () => tf.LayersModel,
  batch: ReferenceBatch,
  inputSize: number,
): Promise<void> {
  const reference = build();
  const accelerated = build();
  try {
    setTrainingState(reference);
    setTrainingState(accelerated);
    const trainer = await OnnxTrainer.create(accelerated, { threads: 1 });
    try {
      await expectTrainerMatchesTfjs(trainer, { reference, accelerated }, batch, inputSize);
    } finally {
      await trainer.dispose();
    }
  } finally {
    reference.dispose();
    accelerated.dispose();
  }
}
