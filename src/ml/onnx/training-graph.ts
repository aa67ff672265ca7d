import type * as tf from '@tensorflow/tfjs';
import { layersAfter } from '../models/layers/chain';
import { layerModule } from '../models/layers/registry';
import {
  type TrainedLayer,
  type TrainingGraph,
  type TrainingGraphParameter,
  UnsupportedLayerError,
  type Value,
} from '../models/layers/types';
import type { GraphBuilder } from './graph';

export type { TrainingGraph, TrainingGraphParameter };

/**
 * One training step of a TF.js layers model as an ONNX graph: the forward pass in training mode (batch
 * statistics, dropout masks fed in), train.ts's weighted binary cross-entropy, and every gradient, written
 * out layer by layer because onnxruntime has no automatic differentiation. The weights are graph inputs,
 * so one session serves a whole training run; the optimizer update stays in TF.js (optimizer.applyGradients,
 * the same Adam or RMSprop as the TF.js path) and so do the batch-norm moving averages, fed the batch
 * statistics this graph outputs.
 *
 * Each layer's forward and backward nodes come from its module (../layers/registry.ts, which lists what
 * trains here: every layer of architectures.ts does), in a chain ending in one sigmoid unit.
 */
export const TRAIN_IMAGE = 'image';
export const TRAIN_LABEL = 'label';
export const TRAIN_WEIGHT = 'weight';
export const TRAIN_LOSS = 'loss';
export const TRAIN_PROBABILITY = 'probability_all';
/** train.ts's clipping of probabilities before the logarithm (Keras' epsilon). */
const EPSILON = 1e-7;

export function appendTrainingGraph(b: GraphBuilder, model: tf.LayersModel): TrainingGraph {
  const inputShape = model.inputs[0].shape;
  const inputSize = inputShape[1] as number;
  b.reserve(TRAIN_LOSS);
  b.reserve(TRAIN_PROBABILITY);
  const image = b.input(TRAIN_IMAGE, ['N', inputSize, inputSize, 3]);
  const label = b.input(TRAIN_LABEL, ['N', 1]);
  const weight = b.input(TRAIN_WEIGHT, ['N', 1]);
  const graph: TrainingGraph = { inputSize, parameters: [], batchNorms: [], dropouts: [] };

  const parameter = (layer: tf.layers.Layer, suffix: string): TrainingGraphParameter => {
    const variable = layer.trainableWeights.find((w) => w.originalName.endsWith(`/${suffix}`));
    if (!variable) {
      throw new UnsupportedLayerError(
        `${layer.name}/${suffix} is not trainable; only fully trainable layers are supported.`,
      );
    }
    const tensor = variable.read() as tf.Variable;
    const input = b.input(b.name(`param:${variable.originalName}`), tensor.shape);
    const p = { variableName: tensor.name, input, gradient: b.name(`grad:${variable.originalName}`) };
    graph.parameters.push(p);
    return p;
  };

  let current: Value = {
    name: b.op('Transpose', [image], 'image_nchw', { perm: [0, 3, 1, 2] }),
    layout: 'NCHW',
    shape: [3, inputSize, inputSize],
  };
  const steps: TrainedLayer[] = [];
  const layers = layersAfter(model, model.inputs[0].sourceLayer);
  if (
    typeof layers === 'string' ||
    layers.length !== model.layers.filter((l) => l.getClassName() !== 'InputLayer').length
  ) {
    throw new UnsupportedLayerError(
      `Training in onnxruntime needs a chain of layers; ${typeof layers === 'string' ? layers : 'this model is not one.'}`,
    );
  }
  for (const layer of commuteReluAndMaxPool(layers)) {
    const className = layer.getClassName();
    const train = layerModule(className)?.train;
    if (!train) {
      throw new UnsupportedLayerError(
        `Layer '${layer.name}' (${className}) cannot be trained in onnxruntime.`,
      );
    }
    const config = layer.getConfig() as Record<string, unknown>;
    const step = train({ b, layer, config, input: current, graph, parameter: (s) => parameter(layer, s) });
    steps.push(step);
    current = step.output;
  }
  if (current.layout !== 'NC' || current.shape[0] !== 1 || steps.at(-1)?.activation !== 'sigmoid') {
    throw new UnsupportedLayerError('Training in onnxruntime needs one sigmoid output unit.');
  }

  // Loss: mean over the batch of the class-weighted binary cross-entropy of clipped probabilities.
  const p = current.name;
  const c = (v: number, hint: string) => b.floats(hint, [], [v]);
  const one = c(1, 'one');
  const clipped = b.op('Clip', [p, c(EPSILON, 'eps'), c(1 - EPSILON, 'one_minus_eps')], 'p_clipped');
  const oneMinusP = b.op('Sub', [one, clipped], 'one_minus_p');
  const oneMinusY = b.op('Sub', [one, label], 'one_minus_y');
  const crossEntropy = b.op(
    'Neg',
    [
      b.op(
        'Add',
        [
          b.op('Mul', [label, b.op('Log', [clipped], 'log_p')], 'y_log_p'),
          b.op('Mul', [oneMinusY, b.op('Log', [oneMinusP], 'log_1mp')], 'y1_log_1mp'),
        ],
        'log_likelihood',
      ),
    ],
    'cross_entropy',
  );
  b.output(
    b.op('ReduceMean', [b.op('Mul', [crossEntropy, weight], 'weighted')], 'loss_mean', { keepdims: 0 }),
    TRAIN_LOSS,
    [],
  );
  b.output(p, TRAIN_PROBABILITY, ['N', 1]);

  // d loss / d p: weight / N * ((1 - y) / (1 - p) - y / p), zero where the clip was active (as tf.clipByValue).
  const batchSize = b.op(
    'Cast',
    [b.op('Gather', [b.op('Shape', [p], 'p_shape'), b.int64s('axis0', [0])], 'batch')],
    'batch_f',
    { to: 1 },
  );
  const dLoss = b.op(
    'Div',
    [
      b.op(
        'Mul',
        [
          weight,
          b.op('Sub', [b.op('Div', [oneMinusY, oneMinusP], 'a'), b.op('Div', [label, clipped], 'b')], 'd_ce'),
        ],
        'wd_ce',
      ),
      batchSize,
    ],
    'd_loss_p',
  );
  const inRange = b.op(
    'And',
    [
      b.op('GreaterOrEqual', [p, c(EPSILON, 'eps2')], 'ge_eps'),
      b.op('LessOrEqual', [p, c(1 - EPSILON, 'one_minus_eps2')], 'le_1meps'),
    ],
    'in_range',
  );
  let gradient = b.op('Where', [inRange, dLoss, c(0, 'zero_loss')], 'd_p');

  for (let i = steps.length - 1; i >= 0; i--) {
    gradient = steps[i].backward(gradient, i === 0);
  }
  return graph;
}

/**
 * The chain with each ReLU that feeds a max pooling moved after it. Max pooling then ReLU gives the same
 * output bit for bit (ReLU keeps order), and the same gradients: where a window's maximum is positive,
 * its first maximum is the same pixel before and after the ReLU, and where it is not, the ReLU's gradient
 * is 0 either way. The ReLU, its mask and its gradient then run on a quarter of the values (2x2 pools):
 * at block 1's full resolution they were a pass over memory each (docs/PERFORMANCE.md).
 */
export function commuteReluAndMaxPool(layers: tf.layers.Layer[]): tf.layers.Layer[] {
  const chain = [...layers];
  for (let i = 0; i + 1 < chain.length; i++) {
    if (isPlainRelu(chain[i]) && chain[i + 1].getClassName() === 'MaxPooling2D') {
      [chain[i], chain[i + 1]] = [chain[i + 1], chain[i]];
      i++;
    }
  }
  return chain;
}

function isPlainRelu(layer: tf.layers.Layer): boolean {
  const config = layer.getConfig() as Record<string, unknown>;
  const className = layer.getClassName();
  return (
    (className === 'Activation' && config.activation === 'relu') ||
    (className === 'ReLU' && config.maxValue == null)
  );
}
