import * as tf from '@tensorflow/tfjs';
import type { GraphBuilder } from '../../onnx/graph';
import { fusedActivation, trainFusedActivation } from './activations';
import { exampleModel, expectMaps, outputShapeOf, pair, requireWeight, tfPads, weight } from './shared';
import { type LayerModule, UnsupportedLayerError, type Value } from './types';

/**
 * Conv2D with a fused activation. Training in onnxruntime: stride 1, undilated only (the backward below
 * is written for that case). Grad-CAM: not in the head (the maps it explains are the last conv's output).
 */
export const conv2d: LayerModule = {
  classNames: ['Conv2D'],

  exportForward(ctx) {
    expectMaps(ctx);
    const { b, layer, config, input } = ctx;
    const name = layer.name;
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
    return fusedActivation(b, { name: conv, ...outputShapeOf(layer) }, config, name);
  },

  train(ctx) {
    expectMaps(ctx);
    const { b, layer, config, input: x, parameter } = ctx;
    const name = layer.name;
    const strides = pair(config.strides as number[]);
    const dilation = pair((config.dilationRate as number[] | number | undefined) ?? 1);
    if (strides.some((s) => s !== 1) || dilation.some((d) => d !== 1)) {
      throw new UnsupportedLayerError(
        `'${name}': only stride 1, undilated convolutions train in onnxruntime.`,
      );
    }
    const kernel = parameter('kernel');
    const bias = config.useBias === false ? undefined : parameter('bias');
    const dims = layer.weights.find((w) => w.originalName.endsWith('/kernel'))!.shape as number[];
    const [kh, kw, , cout] = dims;
    const weightOnnx = b.op('Transpose', [kernel.input], `${name}_W`, { perm: [3, 2, 0, 1] });
    const pads = tfPads(String(config.padding), [x.shape[1], x.shape[2]], [kh, kw], strides);
    const inputs = [x.name, weightOnnx, ...(bias ? [bias.input] : [])];
    const conv = b.op('Conv', inputs, name, { kernel_shape: [kh, kw], pads });
    const shape = (layer.outputShape as number[]).slice(1);
    const pre: Value = { name: conv, layout: 'NCHW', shape: [cout, shape[0], shape[1]] };
    return trainFusedActivation(b, pre, config, name, (gPre, first) => {
      if (bias) {
        const db = b.op('ReduceSum', [gPre, b.int64s(`${name}/baxes`, [0, 2, 3])], `${name}_db`, {
          keepdims: 0,
        });
        b.output(db, bias.gradient, [cout]);
      }
      b.output(kernelGradient(b, name, x.name, gPre, dims, pre, pads), kernel.gradient, dims);
      if (first) return '';
      return inputGradient(b, name, gPre, kernel.input, [kh, kw], pads);
    });
  },

  example: (size) =>
    exampleModel(size, [
      tf.layers.conv2d({
        filters: 3,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 11 }),
        biasInitializer: tf.initializers.constant({ value: 0.02 }),
      }),
    ]),
};

/**
 * dx of a stride-1 convolution: the output gradient convolved with the kernel turned half a turn, in and
 * out swapped (`kernel` is TF.js' [kh, kw, in, out]), padded by what the forward pass did not pad. The
 * same sum as a ConvTranspose by the forward kernel; onnxruntime's ConvTranspose gained little from a
 * second thread: on 2, block 2's input gradient took 10.4 ms as a ConvTranspose against 4.7 ms for the
 * forward Conv of the same size, and the step 0.915x as a Conv (1 thread: the same either way;
 * docs/PERFORMANCE.md, "third pass").
 */
function inputGradient(
  b: GraphBuilder,
  name: string,
  gPre: string,
  kernel: string,
  [kh, kw]: number[],
  [top, left, bottom, right]: number[],
): string {
  // [kh, kw, in, out] -> [in, out, kh, kw], then both spatial axes reversed.
  const swapped = b.op('Transpose', [kernel], `${name}_Wt`, { perm: [2, 3, 0, 1] });
  const turned = b.op(
    'Slice',
    [
      swapped,
      b.int64s(`${name}/turn_starts`, [-1, -1]),
      b.int64s(`${name}/turn_ends`, [-(2 ** 62), -(2 ** 62)]),
      b.int64s(`${name}/turn_axes`, [2, 3]),
      b.int64s(`${name}/turn_steps`, [-1, -1]),
    ],
    `${name}_Wturned`,
  );
  return b.op('Conv', [gPre, turned], `${name}_dx`, {
    kernel_shape: [kh, kw],
    pads: [kh - 1 - top, kw - 1 - left, kh - 1 - bottom, kw - 1 - right],
  });
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

/**
 * dK[a, b, i, o] = sum over n, y, x of input[n, i, y + a - padTop, x + b - padLeft] * gPre[n, o, y, x], as
 * im2col and one batched matrix product: the kh*kw shifted windows of the padded input stacked on the
 * channel axis ([N, Ci*kh*kw, h*w], row (i*kh + a)*kw + b) times gPre transposed ([N, h*w, Co]), summed over
 * N, then reordered to TF.js' [kh, kw, in, out]. The windows come from one grouped convolution whose
 * kernels each pick one tap (a one-hot 3x3 per output channel): exact copies, written once. Slicing the
 * nine windows and concatenating them wrote everything twice. Written as a convolution of the input by
 * gPre instead (channels read as the batch) the whole sum ran at a third of the speed: onnxruntime's
 * convolution is not built for an h x w kernel with a 3 x 3 output.
 */
function kernelGradient(
  b: GraphBuilder,
  name: string,
  input: string,
  gPre: string,
  [kh, kw, ci, co]: number[],
  pre: Value,
  pads: number[],
): string {
  const [h, w] = [pre.shape[1], pre.shape[2]];
  const taps = kh * kw;
  const picks = new Float32Array(ci * taps * taps);
  for (let row = 0; row < ci * taps; row++) picks[row * taps + (row % taps)] = 1;
  const columns = b.op(
    'Reshape',
    [
      b.op('Conv', [input, b.floats(`${name}/taps`, [ci * taps, 1, kh, kw], picks)], `${name}_cols`, {
        kernel_shape: [kh, kw],
        pads,
        group: ci,
      }),
      b.int64s(`${name}/cols_shape`, [0, ci * taps, h * w]),
    ],
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
  return b.op(
    'Transpose',
    [b.op('Reshape', [summed, b.int64s(`${name}/k_shape`, [ci, kh, kw, co])], `${name}_dK_ikko`)],
    `${name}_dK`,
    { perm: [1, 2, 0, 3] },
  );
}
