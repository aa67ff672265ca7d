import * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { GraphBuilder } from './graph';
import { HostAdam, isAdam } from './host-adam';
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
  /** Adam's weights and moments between two syncs (stepInPlace), or none. */
  private host: HostAdam | undefined;
  /** The batch-norm moving statistics between two syncs, by variable. */
  private readonly hostStatistics = new Map<tf.Variable, Float32Array>();

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
    // TF.js' variables are the truth on this path: host state from stepInPlace goes back first.
    this.sync();
    const values = variables.map((v) => v.dataSync() as Float32Array);
    return this.run(batch, variables, values, (outputs) => {
      const gradients: tf.NamedTensorMap = {};
      variables.forEach((variable, i) => {
        gradients[variable.name] = tf.tensor(outputs[i], variable.shape, 'float32');
      });
      return gradients;
    });
  }

  /**
   * `step` with tf.train.adam's update done in place on host copies of the weights and moments
   * (HostAdam), and the batch-norm moving statistics kept on the host too: nothing is copied between
   * TF.js and onnxruntime per step. TF.js sees the state only after `sync()`, which train.ts calls
   * before anything reads the model or the optimizer (validation, checkpoint) and the next call reloads
   * it. Any other optimizer goes through `step`.
   */
  async stepInPlace(
    batch: TrainingBatch,
    optimizer: tf.Optimizer,
    variables: tf.Variable[],
  ): Promise<{ loss: number; correct: number }> {
    if (!isAdam(optimizer)) return this.step(batch, optimizer, variables);
    if (this.host && !this.host.holds(optimizer, variables)) this.sync();
    this.host ??= HostAdam.load(optimizer, variables);
    const host = this.host;
    const { gradients, loss, correct } = await this.run(batch, variables, host.weights, (g) => g, true);
    host.apply(gradients);
    return { loss, correct };
  }

  /** Writes what stepInPlace changed back into TF.js (weights, optimizer, moving statistics). */
  sync(): void {
    this.host?.store();
    this.host = undefined;
    for (const [variable, values] of this.hostStatistics) {
      tf.tidy(() => variable.assign(tf.tensor(values, variable.shape, 'float32')));
    }
    this.hostStatistics.clear();
  }

  /**
   * One forward and backward pass with `values[i]` fed as `variables[i]`; `collect` turns the gradients
   * (in `variables` order, valid until it returns) into the result. Updates the moving statistics, on the
   * host when `onHost`, else in TF.js.
   */
  private async run<G>(
    batch: TrainingBatch,
    variables: tf.Variable[],
    values: Float32Array[],
    collect: (gradients: Float32Array[]) => G,
    onHost = false,
  ): Promise<{ gradients: G; loss: number; correct: number }> {
    const { size } = batch;
    const s = this.graph.inputSize;
    const Tensor = this.ort.Tensor;
    const feeds: Record<string, Ort.Tensor> = {
      [TRAIN_IMAGE]: new Tensor('float32', batch.pixels.subarray(0, size * s * s * 3), [size, s, s, 3]),
      [TRAIN_LABEL]: new Tensor('float32', batch.labels.subarray(0, size), [size, 1]),
      [TRAIN_WEIGHT]: new Tensor('float32', batch.weights.subarray(0, size), [size, 1]),
    };
    const index = new Map(variables.map((v, i) => [v.name, i]));
    for (const p of this.graph.parameters) {
      const i = index.get(p.variableName);
      if (i === undefined)
        throw new Error(`Variable '${p.variableName}' is not among the variables being trained.`);
      feeds[p.input] = new Tensor('float32', values[i], variables[i].shape);
    }
    for (const d of this.graph.dropouts) {
      const seed = (d.layer as unknown as { seed?: number }).seed;
      const mask = tf.tidy(() => tf.dropout(tf.ones([size, d.features]), d.rate, undefined, seed).dataSync());
      feeds[d.input] = new Tensor('float32', mask as Float32Array, [size, d.features]);
    }

    const outputs = await this.session.run(feeds);
    try {
      const byVariable = new Map(this.graph.parameters.map((p) => [p.variableName, p]));
      const gradients = variables.map((variable) => {
        const p = byVariable.get(variable.name);
        if (!p) throw new Error(`The training graph has no gradient for '${variable.name}'.`);
        return outputs[p.gradient].data as Float32Array;
      });
      const collected = collect(gradients);
      if (onHost) this.updateHostStatistics(outputs);
      else this.updateMovingStatistics(outputs);
      const probabilities = outputs[TRAIN_PROBABILITY].data as Float32Array;
      let correct = 0;
      for (let i = 0; i < size; i++) if (Number(probabilities[i] >= 0.5) === batch.labels[i]) correct++;
      return { gradients: collected, loss: (outputs[TRAIN_LOSS].data as Float32Array)[0], correct };
    } finally {
      for (const tensor of Object.values(outputs)) tensor.dispose();
    }
  }

  /** updateMovingStatistics on host copies, rounded to float32 as the TF.js ops round it. */
  private updateHostStatistics(outputs: Ort.InferenceSession.OnnxValueMapType): void {
    for (const bn of this.graph.batchNorms) {
      const rate = Math.fround(1 - (bn.layer as unknown as { momentum: number }).momentum);
      for (const [suffix, output] of [
        ['moving_mean', bn.mean],
        ['moving_variance', bn.variance],
      ] as const) {
        const variable = movingVariable(bn.layer, suffix);
        let moving = this.hostStatistics.get(variable);
        if (!moving) {
          moving = (variable.dataSync() as Float32Array).slice();
          this.hostStatistics.set(variable, moving);
        }
        const batchValue = outputs[output].data as Float32Array;
        for (let j = 0; j < moving.length; j++) {
          const m = moving[j];
          moving[j] = Math.fround(m - Math.fround(Math.fround(m - batchValue[j]) * rate));
        }
      }
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
        const variable = movingVariable(bn.layer, suffix);
        tf.tidy(() => {
          const batchValue = tf.tensor1d(outputs[output].data as Float32Array, 'float32');
          variable.assign(tf.sub(variable, tf.mul(tf.sub(variable, batchValue), 1 - momentum)));
        });
      }
    }
  }

  /** Whether the model given at creation is `model` (a resumed run loads a new model object). */
  trains(model: tf.LayersModel): boolean {
    return this.model === model;
  }

  /** Drops unsynced host state (the run ends without it) and the session. */
  async dispose(): Promise<void> {
    this.host = undefined;
    this.hostStatistics.clear();
    await this.session.release();
  }
}

function movingVariable(layer: tf.layers.Layer, suffix: 'moving_mean' | 'moving_variance'): tf.Variable {
  const weight = layer.weights.find((w) => w.originalName.endsWith(`/${suffix}`));
  if (!weight) throw new Error(`Batch norm '${layer.name}' has no ${suffix}.`);
  return weight.read() as tf.Variable;
}
