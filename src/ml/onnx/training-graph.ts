import type * as tf from '@tensorflow/tfjs';
import { pair, tfPads, UnsupportedLayerError, type Value } from './export';
import type { GraphBuilder } from './graph';

/**
 * One training step of a TF.js layers model as an ONNX graph: the forward pass in training mode (batch
 * statistics, dropout masks fed in), train.ts's weighted binary cross-entropy, and every gradient, written
 * out layer by layer because onnxruntime has no automatic differentiation. The weights are graph inputs,
 * so one session serves a whole training run; the optimizer update stays in TF.js (optimizer.applyGradients,
 * the same Adam or RMSprop as the TF.js path) and so do the batch-norm moving averages, fed the batch
 * statistics this graph outputs.
 *
 * The layers of architectures.ts are supported: Conv2D (stride 1), BatchNormalization, ReLU, MaxPooling2D,
 * GlobalAveragePooling2D, Flatten, Dense, Dropout, in a chain ending in one sigmoid unit.
 */
export const TRAIN_IMAGE = 'image';
export const TRAIN_LABEL = 'label';
export const TRAIN_WEIGHT = 'weight';
export const TRAIN_LOSS = 'loss';
export const TRAIN_PROBABILITY = 'probability_all';
/** train.ts's clipping of probabilities before the logarithm (Keras' epsilon). */
const EPSILON = 1e-7;

export interface TrainingGraphParameter {
  /** The tf.Variable's name, the key optimizer.applyGradients expects. */
  variableName: string;
  input: string;
  gradient: string;
}

export interface TrainingGraph {
  inputSize: number;
  parameters: TrainingGraphParameter[];
  /** Graph outputs with each batch-norm layer's batch mean and (biased) variance. */
  batchNorms: Array<{ layer: tf.layers.Layer; mean: string; variance: string }>;
  /** Graph inputs for each dropout layer's mask: [N, features], already divided by the keep probability. */
  dropouts: Array<{ layer: tf.layers.Layer; input: string; features: number; rate: number }>;
}

interface Step {
  layer: tf.layers.Layer;
  className: string;
  input: Value;
  output: Value;
  /** The value the fused activation was applied to (Conv2D, Dense). */
  pre?: Value;
  activation?: string;
  /** Weights in ONNX layout (Conv2D W [out, in, kh, kw]), kernel input, bias input. */
  weightOnnx?: string;
  kernel?: TrainingGraphParameter;
  bias?: TrainingGraphParameter;
  gamma?: TrainingGraphParameter;
  beta?: TrainingGraphParameter;
  /** Batch-norm intermediates. */
  xhat?: string;
  invStd?: string;
  gammaBroadcast?: string;
  pads?: number[];
  indices?: string;
  mask?: string;
}

export function appendTrainingGraph(b: GraphBuilder, model: tf.LayersModel): TrainingGraph {
  const inputShape = model.inputs[0].shape;
  const inputSize = inputShape[1] as number;
  b.reserve(TRAIN_LOSS);
  b.reserve(TRAIN_PROBABILITY);
  const image = b.input(TRAIN_IMAGE, ['N', inputSize, inputSize, 3]);
  const label = b.input(TRAIN_LABEL, ['N', 1]);
  const weight = b.input(TRAIN_WEIGHT, ['N', 1]);
  const graph: TrainingGraph = { inputSize, parameters: [], batchNorms: [], dropouts: [] };

  const parameter = (layer: tf.layers.Layer, suffix: string): TrainingGraphParameter | undefined => {
    const variable = layer.trainableWeights.find((w) => w.originalName.endsWith(`/${suffix}`));
    if (!variable) return undefined;
    const tensor = variable.read() as tf.Variable;
    const input = b.input(b.name(`param:${variable.originalName}`), tensor.shape);
    const p = { variableName: tensor.name, input, gradient: b.name(`grad:${variable.originalName}`) };
    graph.parameters.push(p);
    return p;
  };
  const mustHave = (p: TrainingGraphParameter | undefined, what: string) => {
    if (!p)
      throw new UnsupportedLayerError(`${what} is not trainable; only fully trainable layers are supported.`);
    return p;
  };

  let current: Value = {
    name: b.op('Transpose', [image], 'image_nchw', { perm: [0, 3, 1, 2] }),
    layout: 'NCHW',
    shape: [3, inputSize, inputSize],
  };
  const steps: Step[] = [];
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  layers.forEach((layer, i) => {
    const previous = i === 0 ? model.inputs[0].sourceLayer : layers[i - 1];
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    if (layer.inboundNodes.length !== 1 || inbound.length !== 1 || inbound[0] !== previous) {
      throw new UnsupportedLayerError(
        `Training in onnxruntime needs a chain of layers; '${layer.name}' is not.`,
      );
    }
    const step = forward(b, layer, current, parameter, mustHave, graph);
    steps.push(step);
    current = step.output;
  });
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
    gradient = backward(b, steps[i], gradient, i === 0);
  }
  return graph;
}

function forward(
  b: GraphBuilder,
  layer: tf.layers.Layer,
  x: Value,
  parameter: (layer: tf.layers.Layer, suffix: string) => TrainingGraphParameter | undefined,
  mustHave: (p: TrainingGraphParameter | undefined, what: string) => TrainingGraphParameter,
  graph: TrainingGraph,
): Step {
  const className = layer.getClassName();
  const config = layer.getConfig() as Record<string, unknown>;
  const name = layer.name;
  const step: Step = { layer, className, input: x, output: x };
  switch (className) {
    case 'Conv2D': {
      if (x.layout !== 'NCHW') throw new UnsupportedLayerError(`'${name}' needs feature maps.`);
      const strides = pair(config.strides as number[]);
      const dilation = pair((config.dilationRate as number[] | number | undefined) ?? 1);
      if (strides.some((s) => s !== 1) || dilation.some((d) => d !== 1)) {
        throw new UnsupportedLayerError(
          `'${name}': only stride 1, undilated convolutions train in onnxruntime.`,
        );
      }
      step.kernel = mustHave(parameter(layer, 'kernel'), `${name}/kernel`);
      step.bias = config.useBias === false ? undefined : mustHave(parameter(layer, 'bias'), `${name}/bias`);
      const [kh, kw, , cout] = layer.weights.find((w) => w.originalName.endsWith('/kernel'))!
        .shape as number[];
      step.weightOnnx = b.op('Transpose', [step.kernel.input], `${name}_W`, { perm: [3, 2, 0, 1] });
      step.pads = tfPads(String(config.padding), [x.shape[1], x.shape[2]], [kh, kw], strides);
      const inputs = [x.name, step.weightOnnx, ...(step.bias ? [step.bias.input] : [])];
      const out = b.op('Conv', inputs, name, { kernel_shape: [kh, kw], pads: step.pads });
      const shape = (layer.outputShape as number[]).slice(1);
      step.pre = { name: out, layout: 'NCHW', shape: [cout, shape[0], shape[1]] };
      step.activation = String(config.activation ?? 'linear');
      step.output = applyActivation(b, step.pre, step.activation, name);
      return step;
    }
    case 'Dense': {
      if (x.layout !== 'NC') throw new UnsupportedLayerError(`'${name}' needs a flat input.`);
      step.kernel = mustHave(parameter(layer, 'kernel'), `${name}/kernel`);
      step.bias = config.useBias === false ? undefined : mustHave(parameter(layer, 'bias'), `${name}/bias`);
      const units = Number(config.units);
      const inputs = [x.name, step.kernel.input, ...(step.bias ? [step.bias.input] : [])];
      step.pre = { name: b.op('Gemm', inputs, name), layout: 'NC', shape: [units] };
      step.activation = String(config.activation ?? 'linear');
      step.output = applyActivation(b, step.pre, step.activation, name);
      return step;
    }
    case 'BatchNormalization': {
      const axis = Number(config.axis ?? -1);
      if (axis !== -1 && axis !== (x.layout === 'NCHW' ? 3 : 1)) {
        throw new UnsupportedLayerError(`'${name}' normalises axis ${axis}.`);
      }
      if (config.scale === false || config.center === false) {
        throw new UnsupportedLayerError(`'${name}': batch norm without scale or centre is not supported.`);
      }
      step.gamma = mustHave(parameter(layer, 'gamma'), `${name}/gamma`);
      step.beta = mustHave(parameter(layer, 'beta'), `${name}/beta`);
      const channels = x.shape[0];
      const axes = x.layout === 'NCHW' ? [0, 2, 3] : [0];
      const broadcast = b.int64s(`${name}/bshape`, x.layout === 'NCHW' ? [1, channels, 1, 1] : [1, channels]);
      const mean = b.op('ReduceMean', [x.name], `${name}_mean`, { axes, keepdims: 1 });
      const centred = b.op('Sub', [x.name, mean], `${name}_centred`);
      const variance = b.op('ReduceMean', [b.op('Mul', [centred, centred], `${name}_sq`)], `${name}_var`, {
        axes,
        keepdims: 1,
      });
      const epsilon = b.floats(`${name}/epsilon`, [], [Number(config.epsilon ?? 1e-3)]);
      step.invStd = b.op(
        'Reciprocal',
        [b.op('Sqrt', [b.op('Add', [variance, epsilon], `${name}_var_eps`)], `${name}_std`)],
        `${name}_inv_std`,
      );
      step.xhat = b.op('Mul', [centred, step.invStd], `${name}_xhat`);
      step.gammaBroadcast = b.op('Reshape', [step.gamma.input, broadcast], `${name}_gamma_b`);
      const scaled = b.op('Mul', [step.xhat, step.gammaBroadcast], `${name}_scaled`);
      const out = b.op(
        'Add',
        [scaled, b.op('Reshape', [step.beta.input, broadcast], `${name}_beta_b`)],
        name,
      );
      const flat = b.int64s(`${name}/cshape`, [channels]);
      const meanOut = b.name(`bn_mean:${name}`);
      const varianceOut = b.name(`bn_variance:${name}`);
      b.output(b.op('Reshape', [mean, flat], `${name}_mean_flat`), meanOut, [channels]);
      b.output(b.op('Reshape', [variance, flat], `${name}_var_flat`), varianceOut, [channels]);
      graph.batchNorms.push({ layer, mean: meanOut, variance: varianceOut });
      step.output = { ...x, name: out };
      return step;
    }
    case 'Activation':
      step.activation = String(config.activation);
      step.output = applyActivation(b, x, step.activation, name);
      return step;
    case 'MaxPooling2D': {
      if (x.layout !== 'NCHW') throw new UnsupportedLayerError(`'${name}' needs feature maps.`);
      const kernel = pair(config.poolSize as number[]);
      const strides = pair((config.strides as number[] | null) ?? kernel);
      const pads = tfPads(String(config.padding), [x.shape[1], x.shape[2]], kernel, strides);
      const [out, indices] = b.node('MaxPool', [x.name], name, { kernel_shape: kernel, strides, pads }, 2);
      const shape = (layer.outputShape as number[]).slice(1);
      step.indices = indices;
      step.output = { name: out, layout: 'NCHW', shape: [shape[2], shape[0], shape[1]] };
      return step;
    }
    case 'GlobalAveragePooling2D': {
      if (x.layout !== 'NCHW') throw new UnsupportedLayerError(`'${name}' needs feature maps.`);
      const pooled = b.op('GlobalAveragePool', [x.name], `${name}_4d`);
      step.output = { name: b.op('Flatten', [pooled], name, { axis: 1 }), layout: 'NC', shape: [x.shape[0]] };
      return step;
    }
    case 'Flatten': {
      if (x.layout === 'NC') return step;
      const nhwc = b.op('Transpose', [x.name], `${name}_nhwc`, { perm: [0, 2, 3, 1] });
      step.output = {
        name: b.op('Flatten', [nhwc], name, { axis: 1 }),
        layout: 'NC',
        shape: [x.shape.reduce((n, d) => n * d, 1)],
      };
      return step;
    }
    case 'Dropout': {
      const rate = Number(config.rate ?? 0);
      if (rate <= 0 || rate >= 1) return step; // TF.js applies no dropout outside (0, 1)
      if (x.layout !== 'NC' || config.noiseShape != null) {
        throw new UnsupportedLayerError(`'${name}': only dropout on flat features trains in onnxruntime.`);
      }
      step.mask = b.input(b.name(`dropout_mask:${name}`), ['N', x.shape[0]]);
      graph.dropouts.push({ layer, input: step.mask, features: x.shape[0], rate });
      step.output = { ...x, name: b.op('Mul', [x.name, step.mask], name) };
      return step;
    }
    default:
      throw new UnsupportedLayerError(`Layer '${name}' (${className}) cannot be trained in onnxruntime.`);
  }
}

function applyActivation(b: GraphBuilder, x: Value, activation: string, hint: string): Value {
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return { ...x, name: b.op('Relu', [x.name], `${hint}_relu`) };
    case 'sigmoid':
      return { ...x, name: b.op('Sigmoid', [x.name], `${hint}_sigmoid`) };
    default:
      throw new UnsupportedLayerError(
        `Activation '${activation}' in '${hint}' cannot be trained in onnxruntime.`,
      );
  }
}

/** d(activation)/d(pre) applied to `g`, from the activation's output `y`. */
function activationBackward(b: GraphBuilder, g: string, y: string, activation: string, hint: string): string {
  switch (activation) {
    case 'linear':
      return g;
    case 'relu':
      return b.op(
        'Where',
        [
          b.op('Greater', [y, b.floats(`${hint}/zero`, [], [0])], `${hint}_on`),
          g,
          b.floats(`${hint}/zero_g`, [], [0]),
        ],
        `${hint}_d_relu`,
      );
    case 'sigmoid': {
      const slope = b.op(
        'Mul',
        [y, b.op('Sub', [b.floats(`${hint}/one`, [], [1]), y], `${hint}_1my`)],
        `${hint}_slope`,
      );
      return b.op('Mul', [g, slope], `${hint}_d_sigmoid`);
    }
    default:
      throw new UnsupportedLayerError(
        `Activation '${activation}' in '${hint}' cannot be trained in onnxruntime.`,
      );
  }
}

/** Emits the layer's parameter gradients; returns the gradient for its input ('' for the first layer). */
function backward(b: GraphBuilder, step: Step, g: string, first: boolean): string {
  const name = step.layer.name;
  const x = step.input;
  switch (step.className) {
    case 'Conv2D': {
      const gPre = activationBackward(b, g, step.output.name, step.activation!, name);
      if (step.bias) {
        b.output(
          b.op('ReduceSum', [gPre, b.int64s(`${name}/baxes`, [0, 2, 3])], `${name}_db`, { keepdims: 0 }),
          step.bias.gradient,
          [step.pre!.shape[0]],
        );
      }
      b.output(kernelGradient(b, step, gPre), step.kernel!.gradient, kernelDims(step));
      if (first) return '';
      return b.op('ConvTranspose', [gPre, step.weightOnnx!], `${name}_dx`, { pads: step.pads! });
    }
    case 'Dense': {
      const gPre = activationBackward(b, g, step.output.name, step.activation!, name);
      if (step.bias) {
        b.output(
          b.op('ReduceSum', [gPre, b.int64s(`${name}/baxes`, [0])], `${name}_db`, { keepdims: 0 }),
          step.bias.gradient,
          [step.pre!.shape[0]],
        );
      }
      b.output(b.op('Gemm', [x.name, gPre], `${name}_dK`, { transA: 1 }), step.kernel!.gradient, [
        x.shape[0],
        step.pre!.shape[0],
      ]);
      if (first) return '';
      return b.op('Gemm', [gPre, step.kernel!.input], `${name}_dx`, { transB: 1 });
    }
    case 'BatchNormalization': {
      const channels = x.shape[0];
      const axes = x.layout === 'NCHW' ? [0, 2, 3] : [0];
      const sumAxes = b.int64s(`${name}/saxes`, axes);
      b.output(
        b.op('ReduceSum', [b.op('Mul', [g, step.xhat!], `${name}_g_xhat`), sumAxes], `${name}_dgamma`, {
          keepdims: 0,
        }),
        step.gamma!.gradient,
        [channels],
      );
      b.output(b.op('ReduceSum', [g, sumAxes], `${name}_dbeta`, { keepdims: 0 }), step.beta!.gradient, [
        channels,
      ]);
      // dx = invStd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means over the normalised axes.
      const dxhat = b.op('Mul', [g, step.gammaBroadcast!], `${name}_dxhat`);
      const m1 = b.op('ReduceMean', [dxhat], `${name}_m1`, { axes, keepdims: 1 });
      const m2 = b.op('ReduceMean', [b.op('Mul', [dxhat, step.xhat!], `${name}_dxhat_xhat`)], `${name}_m2`, {
        axes,
        keepdims: 1,
      });
      const inner = b.op(
        'Sub',
        [b.op('Sub', [dxhat, m1], `${name}_c1`), b.op('Mul', [step.xhat!, m2], `${name}_c2`)],
        `${name}_inner`,
      );
      return b.op('Mul', [inner, step.invStd!], `${name}_dx`);
    }
    case 'Activation':
      return activationBackward(b, g, step.output.name, step.activation!, name);
    case 'MaxPooling2D': {
      // Each window's gradient goes to its first maximum, as in TF.js: a scatter-add at the argmax indices.
      const flat = b.int64s(`${name}/flat`, [-1]);
      const zeros = b.op(
        'ConstantOfShape',
        [b.op('Shape', [b.op('Reshape', [x.name, flat], `${name}_x_flat`)], `${name}_numel`)],
        `${name}_zeros`,
      );
      const scattered = b.op(
        'ScatterElements',
        [
          zeros,
          b.op('Reshape', [step.indices!, flat], `${name}_idx_flat`),
          b.op('Reshape', [g, flat], `${name}_g_flat`),
        ],
        `${name}_scatter`,
        { axis: 0, reduction: 'add' },
      );
      return b.op('Reshape', [scattered, b.op('Shape', [x.name], `${name}_x_shape`)], `${name}_dx`);
    }
    case 'GlobalAveragePooling2D': {
      const [channels, height, width] = x.shape;
      const g4 = b.op('Reshape', [g, b.int64s(`${name}/g4`, [-1, channels, 1, 1])], `${name}_g4`);
      const spread = b.op('Expand', [g4, b.op('Shape', [x.name], `${name}_x_shape`)], `${name}_spread`);
      return b.op('Mul', [spread, b.floats(`${name}/area`, [], [1 / (height * width)])], `${name}_dx`);
    }
    case 'Flatten': {
      if (x.layout === 'NC') return g;
      const [channels, height, width] = x.shape;
      const nhwc = b.op(
        'Reshape',
        [g, b.int64s(`${name}/nhwc`, [-1, height, width, channels])],
        `${name}_g_nhwc`,
      );
      return b.op('Transpose', [nhwc], `${name}_dx`, { perm: [0, 3, 1, 2] });
    }
    case 'Dropout':
      return step.mask ? b.op('Mul', [g, step.mask], `${name}_dx`) : g;
    default:
      throw new UnsupportedLayerError(
        `Layer '${name}' (${step.className}) cannot be trained in onnxruntime.`,
      );
  }
}

/**
 * dK[a, b, i, o] = sum over n, y, x of input[n, i, y + a - padTop, x + b - padLeft] * gPre[n, o, y, x], as
 * im2col and one batched matrix product: the kh*kw shifted windows of the padded input stacked on the
 * channel axis ([N, kh*kw*Ci, h*w], row (a*kw + b)*Ci + i) times gPre transposed ([N, h*w, Co]), summed over
 * N. Its rows come out in TF.js' [kh, kw, in, out] order. Written as a convolution of the input by gPre
 * instead (channels read as the batch) the same sum ran at a third of the speed: onnxruntime's convolution
 * is not built for an h x w kernel with a 3 x 3 output.
 */
function kernelGradient(b: GraphBuilder, step: Step, gPre: string): string {
  const name = step.layer.name;
  const [kh, kw, ci, co] = kernelDims(step);
  const [h, w] = [step.pre!.shape[1], step.pre!.shape[2]];
  const [top, left, bottom, right] = step.pads!;
  const padded =
    top + left + bottom + right === 0
      ? step.input.name
      : b.op(
          'Pad',
          [step.input.name, b.int64s(`${name}/pads`, [0, 0, top, left, 0, 0, bottom, right])],
          `${name}_x_pad`,
        );
  const axes = b.int64s(`${name}/hw_axes`, [2, 3]);
  const windows: string[] = [];
  for (let a = 0; a < kh; a++) {
    for (let c = 0; c < kw; c++) {
      windows.push(
        b.op(
          'Slice',
          [
            padded,
            b.int64s(`${name}/s${a}${c}`, [a, c]),
            b.int64s(`${name}/e${a}${c}`, [a + h, c + w]),
            axes,
          ],
          `${name}_win${a}${c}`,
        ),
      );
    }
  }
  const stacked = windows.length === 1 ? windows[0] : b.op('Concat', windows, `${name}_cols`, { axis: 1 });
  const columns = b.op(
    'Reshape',
    [stacked, b.int64s(`${name}/cols_shape`, [0, kh * kw * ci, h * w])],
    `${name}_cols_flat`,
  );
  const gradRows = b.op(
    'Transpose',
    [b.op('Reshape', [gPre, b.int64s(`${name}/g_shape`, [0, co, h * w])], `${name}_g_flat`)],
    `${name}_g_t`,
    { perm: [0, 2, 1] },
  );
  const perImage = b.op('MatMul', [columns, gradRows], `${name}_dK_n`);
  const summed = b.op('ReduceSum', [perImage, b.int64s(`${name}/n_axis`, [0])], `${name}_dK_sum`, {
    keepdims: 0,
  });
  return b.op('Reshape', [summed, b.int64s(`${name}/k_shape`, [kh, kw, ci, co])], `${name}_dK`);
}

function kernelDims(step: Step): number[] {
  return step.layer.weights.find((w) => w.originalName.endsWith('/kernel'))!.shape as number[];
}
