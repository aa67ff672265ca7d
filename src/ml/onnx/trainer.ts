import * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { GraphBuilder } from './graph';
import { defaultOnnxThreads, onnxRuntime, onnxRuntimeError, sessionOptions } from './session';
import {
  appendTrainingGraph,
  TRAIN_IMAGE,
  TRAIN_LABEL,
  TRAIN_LOSS,
  TRAIN_PROBABILITY,
  TRAIN_WEIGHT,
  type TrainingGraph,
} from './training-graph';

/** One batch as train.ts assembles it: NHWC pixels, labels and per-image loss weights. */
export interface TrainingBatch {
  pixels: Float32Array;
  labels: Float32Array;
  weights: Float32Array;
  size: number;
}

/**
 * Training steps of a TF.js model with the forward and backward passes in onnxruntime (native MLAS
 * kernels on every core) instead of TF.js wasm (`npm run bench` prints both). What a
 * step changes is exactly what TF.js' optimizer.minimize on model.apply(x, { training: true }) changes:
 * the weights, through the same tf.Optimizer (applyGradients with the gradients computed here), and the
 * batch-norm moving statistics, with the layer's current momentum. Dropout masks come from tf.dropout
 * with the layer's current seed, so a seeded run draws the same masks on either path.
 */
export class OnnxTrainer {
  private constructor(
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
    private readonly graph: TrainingGraph,
    private readonly model: tf.LayersModel,
    readonly threads: number,
  ) {}

  /**
   * Throws UnsupportedLayerError for a model with a layer the training graph lacks, and Error when
   * onnxruntime-node is unavailable; the caller then trains with TF.js.
   */
  static async create(model: tf.LayersModel, opts: { threads?: number } = {}): Promise<OnnxTrainer> {
    const ort = onnxRuntime();
    if (!ort) throw new Error(`onnxruntime-node is not available: ${onnxRuntimeError() ?? 'unknown reason'}`);
    const b = new GraphBuilder();
    const graph = appendTrainingGraph(b, model);
    const threads = opts.threads ?? defaultOnnxThreads();
    const bytes = b.encode(`${model.name}-training`, 'Lymphoscope training step');
    const session = await ort.InferenceSession.create(bytes, sessionOptions(threads));
    return new OnnxTrainer(ort, session, graph, model, threads);
  }

  /**
   * Forward, backward and optimizer update for one batch. `variables` is train.ts's list (the model's
   * trainable weights, in order): the optimizer's slots are positional, so the order must be the one the
   * TF.js path passes to optimizer.minimize.
   */
  async step(
    batch: TrainingBatch,
    optimizer: tf.Optimizer,
    variables: tf.Variable[],
  ): Promise<{ loss: number; correct: number }> {
    const { gradients, loss, correct } = await this.gradients(batch, variables);
    try {
      optimizer.applyGradients(gradients);
    } finally {
      tf.dispose(Object.values(gradients));
    }
    return { loss, correct };
  }

  /**
   * Loss, hits at 0.5 and the gradient of every variable for one batch, in `variables` order (the caller
   * disposes the tensors); updates the batch-norm moving statistics, as a TF.js training forward pass does.
   */
  async gradients(
    batch: TrainingBatch,
    variables: tf.Variable[],
  ): Promise<{ gradients: tf.NamedTensorMap; loss: number; correct: number }> {
    const { size } = batch;
    const s = this.graph.inputSize;
    const Tensor = this.ort.Tensor;
    const feeds: Record<string, Ort.Tensor> = {
      [TRAIN_IMAGE]: new Tensor('float32', batch.pixels.subarray(0, size * s * s * 3), [size, s, s, 3]),
      [TRAIN_LABEL]: new Tensor('float32', batch.labels.subarray(0, size), [size, 1]),
      [TRAIN_WEIGHT]: new Tensor('float32', batch.weights.subarray(0, size), [size, 1]),
    };
    const byName = new Map(variables.map((v) => [v.name, v]));
    for (const p of this.graph.parameters) {
      const variable = byName.get(p.variableName);
      if (!variable)
        throw new Error(`Variable '${p.variableName}' is not among the variables being trained.`);
      feeds[p.input] = new Tensor('float32', variable.dataSync() as Float32Array, variable.shape);
    }
    for (const d of this.graph.dropouts) {
      const seed = (d.layer as unknown as { seed?: number }).seed;
      const mask = tf.tidy(() => tf.dropout(tf.ones([size, d.features]), d.rate, undefined, seed).dataSync());
      feeds[d.input] = new Tensor('float32', mask as Float32Array, [size, d.features]);
    }

    const outputs = await this.session.run(feeds);
    try {
      const gradients: tf.NamedTensorMap = {};
      const byVariable = new Map(this.graph.parameters.map((p) => [p.variableName, p]));
      for (const variable of variables) {
        const p = byVariable.get(variable.name);
        if (!p) {
          tf.dispose(Object.values(gradients));
          throw new Error(`The training graph has no gradient for '${variable.name}'.`);
        }
        gradients[variable.name] = tf.tensor(
          outputs[p.gradient].data as Float32Array,
          variable.shape,
          'float32',
        );
      }
      this.updateMovingStatistics(outputs);
      const probabilities = outputs[TRAIN_PROBABILITY].data as Float32Array;
      let correct = 0;
      for (let i = 0; i < size; i++) if (Number(probabilities[i] >= 0.5) === batch.labels[i]) correct++;
      return { gradients, loss: (outputs[TRAIN_LOSS].data as Float32Array)[0], correct };
    } finally {
      for (const tensor of Object.values(outputs)) tensor.dispose();
    }
  }

  /** As tfjs-layers' BatchNormalization does in training: moving -= (moving - batch) * (1 - momentum). */
  private updateMovingStatistics(outputs: Ort.InferenceSession.OnnxValueMapType): void {
    for (const bn of this.graph.batchNorms) {
      const momentum = (bn.layer as unknown as { momentum: number }).momentum;
      for (const [suffix, output] of [
        ['moving_mean', bn.mean],
        ['moving_variance', bn.variance],
      ] as const) {
        const variable = bn.layer.weights.find((w) => w.originalName.endsWith(`/${suffix}`));
        if (!variable) throw new Error(`Batch norm '${bn.layer.name}' has no ${suffix}.`);
        tf.tidy(() => {
          const batchValue = tf.tensor1d(outputs[output].data as Float32Array, 'float32');
          const original = variable.read();
          variable.write(tf.sub(original, tf.mul(tf.sub(original, batchValue), 1 - momentum)));
        });
      }
    }
  }

  /** Whether the model given at creation is `model` (a resumed run loads a new model object). */
  trains(model: tf.LayersModel): boolean {
    return this.model === model;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
