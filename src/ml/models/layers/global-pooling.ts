import * as tf from '@tensorflow/tfjs';
import type { GraphBuilder } from '../../onnx/graph';
import { exampleModel, expectMaps, gradCamSeed } from './shared';
import type { LayerContext, LayerModule, Value } from './types';

/** GlobalAveragePooling2D: exported, trained and passed back through (the gradient spread evenly). */
export const globalAveragePooling2d: LayerModule = {
  classNames: ['GlobalAveragePooling2D'],
  exportForward: (ctx) => ({ output: globalPool(ctx, 'GlobalAveragePool') }),
  train(ctx) {
    const output = globalPool(ctx, 'GlobalAveragePool');
    return {
      output,
      activation: 'linear',
      backward: (g) => globalAverageBackward(ctx.b, ctx.layer.name, ctx.input, g),
    };
  },
  gradCam: (b, t, g) => globalAverageBackward(b, t.layer.name, t.input, g ?? gradCamSeed(b, t)),
  example: (size) => exampleModel(size, [tf.layers.globalAveragePooling2d({})]),
};

/** GlobalMaxPooling2D: exported only (no backward written). */
export const globalMaxPooling2d: LayerModule = {
  classNames: ['GlobalMaxPooling2D'],
  exportForward: (ctx) => ({ output: globalPool(ctx, 'GlobalMaxPool') }),
  example: (size) => exampleModel(size, [tf.layers.globalMaxPooling2d({})]),
};

function globalPool(ctx: LayerContext, op: 'GlobalAveragePool' | 'GlobalMaxPool'): Value {
  expectMaps(ctx);
  const { b, layer, input } = ctx;
  const pooled = b.op(op, [input.name], `${layer.name}_4d`);
  return { name: b.op('Flatten', [pooled], layer.name, { axis: 1 }), layout: 'NC', shape: [input.shape[0]] };
}

/** d/dx of the mean over H x W: g / (H * W) at every pixel of its channel. */
function globalAverageBackward(b: GraphBuilder, name: string, x: Value, g: string): string {
  const [channels, height, width] = x.shape;
  const g4 = b.op('Reshape', [g, b.int64s(`${name}/g4`, [-1, channels, 1, 1])], `${name}_g4`);
  const spread = b.op('Expand', [g4, b.op('Shape', [x.name], `${name}_x_shape`)], `${name}_spread`);
  return b.op('Mul', [spread, b.floats(`${name}/area`, [], [1 / (height * width)])], `${name}_dx`);
}
