import * as tf from '@tensorflow/tfjs';
import { badInput, UnreachableCaseError } from '../../errors';
import {
  ARCHITECTURES,
  type Architecture,
  isArchitecture,
  LAST_CONV_LAYER,
  MAX_INPUT_SIZE,
  MIN_INPUT_SIZE,
} from './architecture-names';

export interface BuildOptions {
  /** Fraction of ALL in the training set; 'majority' predicts it. Default 0.5. */
  prior?: number;
}

/**
 * A fresh, uncompiled model: input [inputSize, inputSize, 3] RGB in [0, 1], output one sigmoid unit, the
 * probability of ALL. Every initializer is seeded, so one (architecture, inputSize, seed) gives one set of
 * initial weights.
 */
export function buildModel(
  arch: Architecture,
  inputSize: number,
  seed: number,
  opts: BuildOptions = {},
): tf.LayersModel {
  if (!Number.isInteger(inputSize) || inputSize < MIN_INPUT_SIZE || inputSize > MAX_INPUT_SIZE) {
    throw badInput(
      `inputSize must be an integer from ${MIN_INPUT_SIZE} to ${MAX_INPUT_SIZE}, got ${inputSize}.`,
    );
  }
  if (!Number.isInteger(seed)) throw badInput(`seed must be an integer, got ${seed}.`);
  const seeds = new LayerSeeds(seed);
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'image' });
  let output: tf.SymbolicTensor;
  if (!isArchitecture(arch)) {
    throw badInput(`Unknown architecture '${arch as string}'; expected one of ${ARCHITECTURES.join(', ')}.`);
  }
  switch (arch) {
    case 'majority':
      output = majority(input, opts.prior ?? 0.5);
      break;
    case 'vanilla':
      output = vanilla(input, seeds);
      break;
    case 'seed-2x2x1x1':
      output = seed2x2x1x1(input, seeds);
      break;
    case 'lymphonet':
      output = lymphonet(input, seeds);
      break;
    default:
      throw new UnreachableCaseError(arch);
  }
  return tf.model({ inputs: input, outputs: output, name: arch });
}

/** The optimizer each architecture trains with; the seed study used RMSprop, ours Adam. */
export function createOptimizer(arch: Architecture, learningRate: number): tf.Optimizer {
  return arch === 'seed-2x2x1x1' ? tf.train.rmsprop(learningRate) : tf.train.adam(learningRate);
}

/**
 * Predicts the training prior whatever the image, so the dummy baseline is served, evaluated and reported
 * through the same code path as a real model. Nothing in it is trainable.
 */
function majority(input: tf.SymbolicTensor, prior: number): tf.SymbolicTensor {
  if (!(prior > 0 && prior < 1))
    throw badInput(`The majority baseline needs a prior in (0, 1), got ${prior}.`);
  const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(input) as tf.SymbolicTensor;
  return tf.layers
    .dense({
      units: 1,
      activation: 'sigmoid',
      kernelInitializer: 'zeros',
      biasInitializer: tf.initializers.constant({ value: Math.log(prior / (1 - prior)) }),
      trainable: false,
      name: 'probability_all',
    })
    .apply(pooled) as tf.SymbolicTensor;
}

/** The study's one-convolution baseline. */
function vanilla(input: tf.SymbolicTensor, seeds: LayerSeeds): tf.SymbolicTensor {
  let x = conv(input, 16, 'relu', 'valid', LAST_CONV_LAYER, seeds);
  x = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  return sigmoidHead(x, seeds);
}

/**
 * The seed study's best net, "2x2x1x1": convolution blocks of 2, 2, 1 and 1 3x3 convolutions ([64, 64],
 * [64, 64], [96], [96]) each followed by 2x2 max pooling, then dense 256 and the sigmoid unit. Keras
 * defaults ('valid' padding, Glorot uniform) as in the original notebook.
 */
const SEED_BLOCKS = [[64, 64], [64, 64], [96], [96]];

/** The smallest input whose feature map survives the seed net's unpadded convolutions and poolings. */
export const SEED_MIN_INPUT_SIZE = (() => {
  const survives = (size: number) =>
    SEED_BLOCKS.every((block) => {
      for (let c = 0; c < block.length; c++) size -= 2;
      size = Math.floor(size / 2);
      return size >= 1;
    });
  let size = MIN_INPUT_SIZE;
  while (!survives(size)) size++;
  return size;
})();

function seed2x2x1x1(input: tf.SymbolicTensor, seeds: LayerSeeds): tf.SymbolicTensor {
  const inputSize = input.shape[1] as number;
  if (inputSize < SEED_MIN_INPUT_SIZE) {
    // Checked here because tfjs would build the layers anyway and XNNPACK then writes out of bounds.
    throw badInput(
      `seed-2x2x1x1 needs inputSize >= ${SEED_MIN_INPUT_SIZE} (unpadded convolutions), got ${inputSize}.`,
    );
  }
  const blocks = SEED_BLOCKS;
  let x = input;
  blocks.forEach((filters, b) => {
    filters.forEach((units, c) => {
      const last = b === blocks.length - 1 && c === filters.length - 1;
      x = conv(x, units, 'relu', 'valid', last ? LAST_CONV_LAYER : `block${b + 1}_conv${c + 1}`, seeds);
    });
    x = tf.layers.maxPooling2d({ poolSize: 2, name: `block${b + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = dense(x, 256, 'relu', 'dense', seeds);
  return sigmoidHead(x, seeds);
}

/**
 * Ours: four blocks of 3x3 convolution (16, 32, 64, 96 filters) + batch norm + ReLU + 2x2 max pooling, then
 * global average pooling, dropout and the sigmoid unit. About 1/15 of the seed net's multiply-adds and
 * 1/6 of its weights: global pooling instead of a flatten + 256-unit dense layer keeps a small data set
 * from being memorised, and the average of "cell here" activations still measures cell size.
 *
 * Batch norm is what lets it train in few epochs, and its moving statistics are the risk on tiny data:
 * train() schedules the momentum from the number of batches per epoch (see batchNormMomentum there); the
 * 0.9 here only applies to other training loops.
 */
function lymphonet(input: tf.SymbolicTensor, seeds: LayerSeeds): tf.SymbolicTensor {
  const widths = [16, 32, 64, 96];
  let x = input;
  widths.forEach((units, b) => {
    const name = b === widths.length - 1 ? LAST_CONV_LAYER : `block${b + 1}_conv`;
    x = tf.layers
      .conv2d({
        filters: units,
        kernelSize: 3,
        padding: 'same',
        useBias: false,
        kernelInitializer: tf.initializers.heNormal({ seed: seeds.next() }),
        name,
      })
      .apply(x) as tf.SymbolicTensor;
    x = tf.layers
      .batchNormalization({ momentum: 0.9, name: `block${b + 1}_bn` })
      .apply(x) as tf.SymbolicTensor;
    x = tf.layers
      .activation({ activation: 'relu', name: `block${b + 1}_relu` })
      .apply(x) as tf.SymbolicTensor;
    x = tf.layers.maxPooling2d({ poolSize: 2, name: `block${b + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.globalAveragePooling2d({ name: 'global_pool' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.3, seed: seeds.next(), name: 'dropout' }).apply(x) as tf.SymbolicTensor;
  return sigmoidHead(x, seeds);
}

function conv(
  x: tf.SymbolicTensor,
  filters: number,
  activation: 'relu',
  padding: 'valid' | 'same',
  name: string,
  seeds: LayerSeeds,
): tf.SymbolicTensor {
  return tf.layers
    .conv2d({
      filters,
      kernelSize: 3,
      padding,
      activation,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seeds.next() }),
      name,
    })
    .apply(x) as tf.SymbolicTensor;
}

function sigmoidHead(x: tf.SymbolicTensor, seeds: LayerSeeds): tf.SymbolicTensor {
  return dense(x, 1, 'sigmoid', 'probability_all', seeds);
}

function dense(
  x: tf.SymbolicTensor,
  units: number,
  activation: 'relu' | 'sigmoid',
  name: string,
  seeds: LayerSeeds,
): tf.SymbolicTensor {
  return tf.layers
    .dense({
      units,
      activation,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seeds.next() }),
      name,
    })
    .apply(x) as tf.SymbolicTensor;
}

/**
 * Distinct, non-zero seeds per layer. tfjs treats a seed of 0 as "unseeded" and draws from Math.random,
 * which would silently break reproducibility.
 */
class LayerSeeds {
  private counter = 0;
  constructor(private readonly base: number) {}
  next(): number {
    this.counter += 1;
    let h = (Math.imul(this.base | 0, 0x9e3779b1) ^ Math.imul(this.counter, 0x85ebca6b)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
    return (((h ^ (h >>> 16)) >>> 0) % 2147483646) + 1;
  }
}

/**
 * Floating-point operations of one forward pass of one image (multiply-adds count 2), from convolutions,
 * dense layers and batch norm; pooling and activations are a rounding error beside them.
 */
export function estimateFlops(model: tf.LayersModel): number {
  let flops = 0;
  for (const layer of model.layers) {
    const className = layer.getClassName();
    const out = layer.outputShape as (number | null)[];
    if (className === 'Conv2D') {
      const [kh, kw, inChannels, outChannels] = kernelShape(layer);
      flops += 2 * (out[1] ?? 0) * (out[2] ?? 0) * kh * kw * inChannels * outChannels;
    } else if (className === 'Dense') {
      const [inUnits, outUnits] = kernelShape(layer);
      flops += 2 * inUnits * outUnits;
    } else if (className === 'BatchNormalization') {
      flops += 2 * out.slice(1).reduce<number>((n, d) => n * (d ?? 1), 1);
    }
  }
  return flops;
}

function kernelShape(layer: tf.layers.Layer): number[] {
  const kernel = layer.weights.find((w) => w.originalName.endsWith('/kernel'));
  if (!kernel) throw new Error(`Layer '${layer.name}' has no kernel weight.`);
  return kernel.shape as number[];
}
