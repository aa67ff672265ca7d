import type * as tf from '@tensorflow/tfjs';
import { LAST_CONV_LAYER } from '../architectures';
import { appendGradCam } from './grad-cam-graph';
import { GraphBuilder } from './graph';

/** Names of the exported graph's tensors, which serving asks for. */
export const ONNX_INPUT = 'image';
export const ONNX_PROBABILITY = 'probability_all';
/** Grad-CAM for the ALL class before normalisation: [N, 1, inputSize, inputSize], >= 0. */
export const ONNX_GRAD_CAM = 'grad_cam';

/**
 * A tensor of the graph being built. Feature maps are kept NCHW, the layout onnxruntime's convolutions
 * want; the model's input stays NHWC (what preprocessing produces and the TF.js model takes) and is
 * transposed once. `shape` excludes the batch axis: [C, H, W] for 'NCHW', [features] for 'NC'.
 */
export interface Value {
  name: string;
  layout: 'NCHW' | 'NC';
  shape: number[];
}

/** What one layer turned into, kept for the Grad-CAM graph, which walks the head backwards. */
export interface LayerTrace {
  layer: tf.layers.Layer;
  className: string;
  input: Value;
  output: Value;
  /** Pre-activation value of a Conv2D/Dense with a fused activation. */
  preActivation?: Value;
  /** MaxPool's argmax indices, asked for only on layers the Grad-CAM gradient flows through. */
  indices?: string;
}

export interface OnnxExport {
  bytes: Uint8Array;
  inputSize: number;
  /** Whether the graph has the ONNX_GRAD_CAM output; false when the head has a layer we cannot differentiate. */
  gradCam: boolean;
  /** Why there is no Grad-CAM output, when there is none. */
  gradCamSkipped?: string;
}

/** A layer the exporter cannot translate; nothing is exported. */
export class UnsupportedLayerError extends Error {}

/**
 * Translates a TF.js layers model of the kind architectures.ts builds (one NHWC RGB input, a chain or DAG
 * of Conv2D, BatchNormalization, activations, pooling, Flatten, Dense, Dropout, one output) into an ONNX
 * model for onnxruntime: input 'image' [N, size, size, 3] NHWC, output 'probability_all' [N, units].
 *
 * When the model has a layer named `last_conv` followed by a chain of layers we can differentiate, the graph
 * also computes Grad-CAM (see grad-cam-graph.ts), so serving can explain without TF.js. Weights are read
 * from the model's variables, which needs an initialised TF.js backend.
 */
export function exportOnnx(model: tf.LayersModel, opts: { gradCamLayer?: string } = {}): OnnxExport {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new UnsupportedLayerError('Only models with one input and one output can be exported.');
  }
  const inputShape = model.inputs[0].shape;
  if (inputShape.length !== 4 || inputShape[3] !== 3 || inputShape[1] !== inputShape[2]) {
    throw new UnsupportedLayerError(`Expected a square RGB NHWC input, got [${inputShape.join(', ')}].`);
  }
  const inputSize = inputShape[1] as number;
  const camLayerName = opts.gradCamLayer ?? LAST_CONV_LAYER;
  const chain = headChain(model, camLayerName);

  const b = new GraphBuilder();
  b.reserve(ONNX_PROBABILITY);
  b.reserve(ONNX_GRAD_CAM);
  const image = b.input(ONNX_INPUT, ['N', inputSize, inputSize, 3]);
  const values = new Map<string, Value>();
  values.set(model.inputs[0].name, {
    name: b.op('Transpose', [image], 'image_nchw', { perm: [0, 3, 1, 2] }),
    layout: 'NCHW',
    shape: [3, inputSize, inputSize],
  });
  const traces = new Map<string, LayerTrace>();
  const withIndices = new Set(chain.map((l) => l.name));
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (className === 'InputLayer') continue;
    const node = layer.inboundNodes[0];
    if (layer.inboundNodes.length !== 1 || node.inputTensors.length !== 1) {
      throw new UnsupportedLayerError(`Layer '${layer.name}' is shared or has several inputs.`);
    }
    const input = values.get(node.inputTensors[0].name);
    if (!input) throw new Error(`Layer '${layer.name}' reads a tensor not yet exported.`);
    const trace = translateLayer(b, layer, className, input, withIndices.has(layer.name));
    values.set(node.outputTensors[0].name, trace.output);
    traces.set(layer.name, trace);
  }

  const result = values.get(model.outputs[0].name);
  if (!result || result.layout !== 'NC')
    throw new UnsupportedLayerError('The model output is not [N, units].');
  b.output(result.name, ONNX_PROBABILITY, ['N', ...result.shape]);

  let gradCam = false;
  let gradCamSkipped: string | undefined = chain.length === 0 ? `no '${camLayerName}' layer` : undefined;
  if (chain.length > 0) {
    const camTrace = traces.get(camLayerName)!;
    try {
      const cam = appendGradCam(
        b,
        camTrace,
        chain.map((l) => traces.get(l.name)!),
        inputSize,
      );
      b.output(cam, ONNX_GRAD_CAM, ['N', 1, inputSize, inputSize]);
      gradCam = true;
    } catch (error) {
      if (!(error instanceof UnsupportedLayerError)) throw error;
      gradCamSkipped = error.message;
    }
  }
  const bytes = b.encode(model.name, `Exported from the TF.js model '${model.name}' by Lymphoscope.`);
  return { bytes, inputSize, gradCam, ...(gradCamSkipped ? { gradCamSkipped } : {}) };
}

/** The layers after `from` up to the output, when they form a chain; empty when there is no such layer. */
function headChain(model: tf.LayersModel, from: string): tf.layers.Layer[] {
  let current = model.layers.find((l) => l.name === from);
  if (!current) return [];
  const outputLayer = model.outputs[0].sourceLayer;
  const chain: tf.layers.Layer[] = [];
  while (current !== outputLayer) {
    const previous: tf.layers.Layer = current;
    const consumers = model.layers.filter((l) => l.inboundNodes[0]?.inboundLayers.includes(previous));
    if (consumers.length !== 1 || consumers[0].inboundNodes[0].inboundLayers.length !== 1) return [];
    current = consumers[0];
    chain.push(current);
  }
  return chain;
}

function weight(layer: tf.layers.Layer, suffix: string): { shape: number[]; values: Float32Array } | null {
  const variable = layer.weights.find((w) => w.originalName.endsWith(`/${suffix}`));
  if (!variable) return null;
  const tensor = variable.read();
  if (tensor.dtype !== 'float32') throw new UnsupportedLayerError(`${variable.originalName} is not float32.`);
  return { shape: tensor.shape, values: tensor.dataSync() as Float32Array };
}

function requireWeight(layer: tf.layers.Layer, suffix: string) {
  const w = weight(layer, suffix);
  if (!w) throw new UnsupportedLayerError(`Layer '${layer.name}' has no '${suffix}' weight.`);
  return w;
}

/** The output shape TF.js computed for the layer, as [C, H, W] or [units]. */
function outputShapeOf(layer: tf.layers.Layer): { layout: Value['layout']; shape: number[] } {
  const shape = (layer.outputShape as number[]).slice(1);
  if (shape.length === 3) return { layout: 'NCHW', shape: [shape[2], shape[0], shape[1]] };
  if (shape.length === 1) return { layout: 'NC', shape };
  throw new UnsupportedLayerError(`Layer '${layer.name}' has an output of rank ${shape.length + 1}.`);
}

/** TensorFlow's padding for 'same' puts the odd pixel at the bottom/right; ONNX wants it explicit. */
export function tfPads(
  padding: string,
  inSize: [number, number],
  kernel: [number, number],
  strides: [number, number],
  dilation: [number, number] = [1, 1],
): number[] {
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding !== 'same') throw new UnsupportedLayerError(`Padding '${padding}' is not supported.`);
  const [before, after] = [0, 1].map(() => [0, 0]);
  for (const axis of [0, 1]) {
    const effective = (kernel[axis] - 1) * dilation[axis] + 1;
    const out = Math.ceil(inSize[axis] / strides[axis]);
    const total = Math.max((out - 1) * strides[axis] + effective - inSize[axis], 0);
    before[axis] = Math.floor(total / 2);
    after[axis] = total - before[axis];
  }
  return [before[0], before[1], after[0], after[1]];
}

export const pair = (v: number | number[]): [number, number] => (Array.isArray(v) ? [v[0], v[1]] : [v, v]);

function translateLayer(
  b: GraphBuilder,
  layer: tf.layers.Layer,
  className: string,
  input: Value,
  keepIndices: boolean,
): LayerTrace {
  const config = layer.getConfig() as Record<string, unknown>;
  const name = layer.name;
  const trace = (output: Value, extra: Partial<LayerTrace> = {}): LayerTrace => ({
    layer,
    className,
    input,
    output,
    ...extra,
  });
  const expectMaps = () => {
    if (input.layout !== 'NCHW') throw new UnsupportedLayerError(`'${name}' needs a 4-D input.`);
    if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') {
      throw new UnsupportedLayerError(`'${name}' is not channelsLast.`);
    }
  };
  switch (className) {
    case 'Conv2D': {
      expectMaps();
      const kernel = requireWeight(layer, 'kernel'); // [kh, kw, in, out]
      const [kh, kw, cin, cout] = kernel.shape;
      const strides = pair(config.strides as number[]);
      const dilation = pair((config.dilationRate as number[] | number | undefined) ?? 1);
      const w = b.floats(`${name}/W`, [cout, cin, kh, kw], transposeKernel(kernel.values, kh, kw, cin, cout));
      const bias = config.useBias === false ? null : weight(layer, 'bias');
      const conv = b.op(
        'Conv',
        bias ? [input.name, w, b.floats(`${name}/B`, [cout], bias.values)] : [input.name, w],
        name,
        {
          kernel_shape: [kh, kw],
          strides,
          dilations: dilation,
          pads: tfPads(String(config.padding), [input.shape[1], input.shape[2]], [kh, kw], strides, dilation),
        },
      );
      const pre: Value = { name: conv, ...outputShapeOf(layer) };
      const post = activation(b, pre, String(config.activation ?? 'linear'), name);
      return trace(post, post === pre ? {} : { preActivation: pre });
    }
    case 'Dense': {
      if (input.layout !== 'NC') throw new UnsupportedLayerError(`Dense '${name}' needs a flat input.`);
      const kernel = requireWeight(layer, 'kernel'); // [in, units]
      const bias = config.useBias === false ? null : weight(layer, 'bias');
      const inputs = [input.name, b.floats(`${name}/kernel`, kernel.shape, kernel.values)];
      if (bias) inputs.push(b.floats(`${name}/bias`, bias.shape, bias.values));
      const pre: Value = { name: b.op('Gemm', inputs, name), layout: 'NC', shape: [kernel.shape[1]] };
      const post = activation(b, pre, String(config.activation ?? 'linear'), name);
      return trace(post, post === pre ? {} : { preActivation: pre });
    }
    case 'BatchNormalization': {
      const axis = Number(config.axis ?? -1);
      const rank = input.layout === 'NCHW' ? 4 : 2;
      if (axis !== -1 && axis !== rank - 1)
        throw new UnsupportedLayerError(`'${name}' normalises axis ${axis}.`);
      const channels = input.shape[0];
      const ones = new Float32Array(channels).fill(1);
      const gamma = weight(layer, 'gamma')?.values ?? ones;
      const beta = weight(layer, 'beta')?.values ?? new Float32Array(channels);
      const mean = requireWeight(layer, 'moving_mean').values;
      const variance = requireWeight(layer, 'moving_variance').values;
      const out = b.op(
        'BatchNormalization',
        [
          input.name,
          b.floats(`${name}/gamma`, [channels], gamma),
          b.floats(`${name}/beta`, [channels], beta),
          b.floats(`${name}/mean`, [channels], mean),
          b.floats(`${name}/variance`, [channels], variance),
        ],
        name,
        { epsilon: { float: Number(config.epsilon ?? 1e-3) } },
      );
      return trace({ ...input, name: out });
    }
    case 'Activation':
      return trace(activation(b, input, String(config.activation), name));
    case 'ReLU': {
      if (config.maxValue != null) {
        return trace(clip(b, input, 0, Number(config.maxValue), name));
      }
      return trace(activation(b, input, 'relu', name));
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      expectMaps();
      const kernel = pair(config.poolSize as number[]);
      const strides = pair((config.strides as number[] | null) ?? kernel);
      const attributes = {
        kernel_shape: kernel,
        strides,
        pads: tfPads(String(config.padding), [input.shape[1], input.shape[2]], kernel, strides),
        // TensorFlow averages over the pixels inside the image only.
        ...(className === 'AveragePooling2D' ? { count_include_pad: 0 } : {}),
      };
      const op = className === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool';
      const withArgmax = keepIndices && op === 'MaxPool';
      const [out, indices] = b.node(op, [input.name], name, attributes, withArgmax ? 2 : 1);
      return trace({ name: out, ...outputShapeOf(layer) }, withArgmax ? { indices } : {});
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D': {
      expectMaps();
      const op = className === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool';
      const pooled = b.op(op, [input.name], `${name}_4d`);
      const out = b.op('Flatten', [pooled], name, { axis: 1 });
      return trace({ name: out, layout: 'NC', shape: [input.shape[0]] });
    }
    case 'Flatten': {
      if (input.layout === 'NC') return trace(input);
      // TF.js flattens NHWC: channels vary fastest. Back to NHWC first, or a Dense after it reads scrambled features.
      const nhwc = b.op('Transpose', [input.name], `${name}_nhwc`, { perm: [0, 2, 3, 1] });
      const out = b.op('Flatten', [nhwc], name, { axis: 1 });
      return trace({ name: out, layout: 'NC', shape: [input.shape.reduce((n, d) => n * d, 1)] });
    }
    case 'Dropout':
    case 'SpatialDropout2D':
    case 'GaussianDropout':
    case 'GaussianNoise':
      // Inference: the identity.
      return trace(input);
    default:
      throw new UnsupportedLayerError(`Layer '${name}' of type ${className} cannot be exported to ONNX.`);
  }
}

/** [kh, kw, in, out] (TF) to [out, in, kh, kw] (ONNX). */
function transposeKernel(
  values: Float32Array,
  kh: number,
  kw: number,
  cin: number,
  cout: number,
): Float32Array {
  const out = new Float32Array(values.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++)
          out[((o * cin + i) * kh + y) * kw + x] = values[((y * kw + x) * cin + i) * cout + o];
  return out;
}

function clip(b: GraphBuilder, x: Value, min: number, max: number, hint: string): Value {
  const bounds = [b.floats(`${hint}/min`, [], [min]), b.floats(`${hint}/max`, [], [max])];
  return { ...x, name: b.op('Clip', [x.name, ...bounds], hint) };
}

/** TF.js activations by their config name; 'linear' returns `x` itself. */
export function activation(b: GraphBuilder, x: Value, name: string, hint: string): Value {
  const unary: Record<string, string> = {
    relu: 'Relu',
    sigmoid: 'Sigmoid',
    tanh: 'Tanh',
    softplus: 'Softplus',
    softsign: 'Softsign',
    selu: 'Selu',
  };
  const out = (op: string, inputs: string[], attributes = {}) => ({
    ...x,
    name: b.op(op, inputs, `${hint}_${name}`, attributes),
  });
  if (name === 'linear') return x;
  if (unary[name]) return out(unary[name], [x.name]);
  switch (name) {
    case 'elu':
      return out('Elu', [x.name], { alpha: { float: 1 } });
    case 'relu6':
      return clip(b, x, 0, 6, `${hint}_relu6`);
    case 'hardSigmoid':
      return out('HardSigmoid', [x.name], { alpha: { float: 0.2 }, beta: { float: 0.5 } });
    case 'softmax':
      if (x.layout !== 'NC') throw new UnsupportedLayerError(`softmax on feature maps in '${hint}'.`);
      return out('Softmax', [x.name], { axis: -1 });
    case 'swish':
      return out('Mul', [x.name, b.op('Sigmoid', [x.name], `${hint}_swish_gate`)]);
    default:
      throw new UnsupportedLayerError(`Activation '${name}' in '${hint}' cannot be exported to ONNX.`);
  }
}
