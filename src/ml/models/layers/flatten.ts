import * as tf from '@tensorflow/tfjs';
import type { GraphBuilder } from '../../onnx/graph';
import { exampleModel, gradCamSeed } from './shared';
import type { LayerContext, LayerModule, Value } from './types';

/**
 * Flatten. TF.js flattens NHWC, channels varying fastest: the NCHW maps go back to NHWC first, or a Dense
 * after it reads scrambled features.
 */
export const flatten: LayerModule = {
  classNames: ['Flatten'],
  exportForward: (ctx) => ({ output: flattenForward(ctx) }),
  train: (ctx) => ({
    output: flattenForward(ctx),
    activation: 'linear',
    backward: (g) => flattenBackward(ctx.b, ctx.layer.name, ctx.input, g),
  }),
  gradCam: (b, t, g) => flattenBackward(b, t.layer.name, t.input, g ?? gradCamSeed(b, t)),
  example: (size) => exampleModel(size, [tf.layers.maxPooling2d({ poolSize: 2 }), tf.layers.flatten()]),
};

function flattenForward({ b, layer, input }: LayerContext): Value {
  if (input.layout === 'NC') return input;
  const nhwc = b.op('Transpose', [input.name], `${layer.name}_nhwc`, { perm: [0, 2, 3, 1] });
  return {
    name: b.op('Flatten', [nhwc], layer.name, { axis: 1 }),
    layout: 'NC',
    shape: [input.shape.reduce((n, d) => n * d, 1)],
  };
}

function flattenBackward(b: GraphBuilder, name: string, x: Value, g: string): string {
  if (x.layout === 'NC') return g;
  const [channels, height, width] = x.shape;
  const nhwc = b.op(
    'Reshape',
    [g, b.int64s(`${name}/nhwc`, [-1, height, width, channels])],
    `${name}_g_nhwc`,
  );
  return b.op('Transpose', [nhwc], `${name}_dx`, { perm: [0, 3, 1, 2] });
}
