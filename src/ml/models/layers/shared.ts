import * as tf from '@tensorflow/tfjs';
import type { GraphBuilder } from '../../onnx/graph';
import { type LayerContext, type LayerTrace, UnsupportedLayerError, type Value } from './types';

/** A weight of the layer by its suffix ('kernel', 'bias', 'gamma', ...), read as float32; null when absent. */
export function weight(
  layer: tf.layers.Layer,
  suffix: string,
): { shape: number[]; values: Float32Array } | null {
  const variable = layer.weights.find((w) => w.originalName.endsWith(`/${suffix}`));
  if (!variable) return null;
  const tensor = variable.read();
  if (tensor.dtype !== 'float32') throw new UnsupportedLayerError(`${variable.originalName} is not float32.`);
  return { shape: tensor.shape, values: tensor.dataSync() as Float32Array };
}

export function requireWeight(layer: tf.layers.Layer, suffix: string) {
  const w = weight(layer, suffix);
  if (!w) throw new UnsupportedLayerError(`Layer '${layer.name}' has no '${suffix}' weight.`);
  return w;
}

/** The output shape TF.js computed for the layer, as [C, H, W] or [units]. */
export function outputShapeOf(layer: tf.layers.Layer): Pick<Value, 'layout' | 'shape'> {
  const shape = (layer.outputShape as number[]).slice(1);
  if (shape.length === 3) return { layout: 'NCHW', shape: [shape[2], shape[0], shape[1]] };
  if (shape.length === 1) return { layout: 'NC', shape };
  throw new UnsupportedLayerError(`Layer '${layer.name}' has an output of rank ${shape.length + 1}.`);
}

/** Throws unless the layer's input is a batch of channelsLast feature maps. */
export function expectMaps({ layer, config, input }: LayerContext): void {
  if (input.layout !== 'NCHW') throw new UnsupportedLayerError(`'${layer.name}' needs a 4-D input.`);
  if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') {
    throw new UnsupportedLayerError(`'${layer.name}' is not channelsLast.`);
  }
}

/** Throws unless the layer's input is [N, features]. */
export function expectFlat({ layer, input }: LayerContext): void {
  if (input.layout !== 'NC') throw new UnsupportedLayerError(`'${layer.name}' needs a flat input.`);
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

/** Grad-CAM's seed where the layer is the model's output: 1 per output value. */
export function gradCamSeed(b: GraphBuilder, trace: LayerTrace): string {
  const name = trace.layer.name;
  return b.op(
    'Expand',
    [b.floats(`${name}/one`, [1, 1], [1]), b.op('Shape', [trace.output.name], `${name}_shape`)],
    `${name}_seed`,
  );
}

/**
 * The model a layer module checks itself with: a 3x3 ReLU conv layer named 'last_conv' (Grad-CAM's maps),
 * the layers under test, a Flatten when they leave feature maps, and one sigmoid unit named
 * 'probability_all'. Seeded, so a failing check fails the same way twice.
 */
export function exampleModel(inputSize: number, layers: tf.layers.Layer[]): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3] });
  let x = tf.layers
    .conv2d({
      filters: 4,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      name: 'last_conv',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }),
      biasInitializer: tf.initializers.constant({ value: 0.05 }),
    })
    .apply(input) as tf.SymbolicTensor;
  for (const layer of layers) x = layer.apply(x) as tf.SymbolicTensor;
  if (x.shape.length === 4) x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  const output = tf.layers
    .dense({
      units: 1,
      activation: 'sigmoid',
      name: 'probability_all',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }),
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output });
}
