import * as tf from '@tensorflow/tfjs';
import type { GraphBuilder } from '../../onnx/graph';
import { exampleModel, expectMaps, gradCamSeed, outputShapeOf, pair, tfPads } from './shared';
import type { ExportContext, LayerModule, LayerTrace } from './types';

/** MaxPooling2D: exported, trained and passed back through, the gradient going to each window's argmax. */
export const maxPooling2d: LayerModule = {
  classNames: ['MaxPooling2D'],

  exportForward: (ctx) => pool(ctx, 'MaxPool', ctx.onGradCamPath),

  train(ctx) {
    const { b } = ctx;
    const { output, indices } = pool(ctx, 'MaxPool', true);
    return {
      output,
      activation: 'linear',
      backward: (g) => maxPoolBackward(b, ctx, indices!, g),
    };
  },

  gradCam(b, t, g) {
    if (!t.indices) throw new Error(`MaxPool '${t.layer.name}' was exported without its indices.`);
    return maxPoolBackward(b, t, t.indices, g ?? gradCamSeed(b, t));
  },

  // Windows side by side (MaxUnpool passes back), then overlapping ones (the scatter-add does).
  example: (size) =>
    exampleModel(size, [
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
    ]),
};

/** AveragePooling2D: exported only (no backward written). */
export const averagePooling2d: LayerModule = {
  classNames: ['AveragePooling2D'],
  exportForward: (ctx) => pool(ctx, 'AveragePool', false),
  example: (size) => exampleModel(size, [tf.layers.averagePooling2d({ poolSize: 3, padding: 'same' })]),
};

/** The layer's window and step, [rows, columns] each; the step defaults to the window, as in TF.js. */
function poolWindows(config: Record<string, unknown>) {
  const kernel = pair(config.poolSize as number[]);
  return { kernel, strides: pair((config.strides as number[] | null) ?? kernel) };
}

function pool(
  ctx: ExportContext | Omit<ExportContext, 'onGradCamPath'>,
  op: 'MaxPool' | 'AveragePool',
  argmax: boolean,
) {
  expectMaps(ctx);
  const { b, layer, config, input } = ctx;
  const { kernel, strides } = poolWindows(config);
  const attributes = {
    kernel_shape: kernel,
    strides,
    pads: tfPads(String(config.padding), [input.shape[1], input.shape[2]], kernel, strides),
    // TensorFlow averages over the pixels inside the image only.
    ...(op === 'AveragePool' ? { count_include_pad: 0 } : {}),
  };
  const [out, indices] = b.node(op, [input.name], layer.name, attributes, argmax ? 2 : 1);
  const output = { name: out, ...outputShapeOf(layer) };
  return argmax ? ({ output, indices } satisfies Partial<LayerTrace>) : { output };
}

/**
 * Each window's gradient goes to its argmax (the first maximum, as in TF.js); the indices count over the
 * whole N*C*H*W input. Where the windows do not overlap, each pixel is some window's argmax at most once
 * and MaxUnpool writes the gradients there in one node (a quarter of the time of the scatter-add at
 * lymphonet's block 1); overlapping windows can share an argmax, whose gradients one flat scatter-add sums.
 */
function maxPoolBackward(
  b: GraphBuilder,
  { layer, input }: { layer: tf.layers.Layer; input: { name: string } },
  indices: string,
  g: string,
): string {
  const name = layer.name;
  const { kernel, strides } = poolWindows(layer.getConfig() as Record<string, unknown>);
  const inputShape = b.op('Shape', [input.name], `${name}_in_shape`);
  if (strides[0] >= kernel[0] && strides[1] >= kernel[1]) {
    return b.op('MaxUnpool', [g, indices, inputShape], `${name}_dx`, { kernel_shape: kernel, strides });
  }
  const flat = b.int64s(`${name}/flat`, [-1]);
  const zeros = b.op(
    'ConstantOfShape',
    [b.op('Shape', [b.op('Reshape', [input.name, flat], `${name}_in_flat`)], `${name}_numel`)],
    `${name}_zeros`,
  );
  const scattered = b.op(
    'ScatterElements',
    [
      zeros,
      b.op('Reshape', [indices, flat], `${name}_idx_flat`),
      b.op('Reshape', [g, flat], `${name}_g_flat`),
    ],
    `${name}_scatter`,
    { axis: 0, reduction: 'add' },
  );
  return b.op('Reshape', [scattered, inputShape], `${name}_dx`);
}
