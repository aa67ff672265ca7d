import type { LayerTrace, Value } from './export';
import { UnsupportedLayerError } from './export';
import type { GraphBuilder } from './graph';

/**
 * Grad-CAM as part of the ONNX graph, so one onnxruntime run answers both the probability and its heat
 * map. onnxruntime has no automatic differentiation at inference, so the gradient of the ALL logit with
 * respect to the conv maps is written out layer by layer, backwards through the head (the layers after
 * the conv layer: batch norm, ReLU, max pooling, global pooling, flatten, dense). It is the same quantity
 * src/ml/heatmap.ts gets from tf.grad, and the same map afterwards: channel weights = mean gradient,
 * ReLU of the weighted sum of maps, bilinear upsampling as tf.image.resizeBilinear does it (asymmetric
 * coordinates, no corner alignment). The final division by the maximum is left to the caller.
 *
 * Throws UnsupportedLayerError for a head with a layer it cannot differentiate; the export then simply
 * has no Grad-CAM output and serving explains with TF.js.
 */
export function appendGradCam(
  b: GraphBuilder,
  camLayer: LayerTrace,
  chain: LayerTrace[],
  inputSize: number,
): string {
  const maps = camLayer.output;
  if (maps.layout !== 'NCHW')
    throw new UnsupportedLayerError(`'${camLayer.layer.name}' has no feature maps.`);

  let gradient: string | null = null; // d logit / d (output of the layer being visited); null = the seed
  for (let i = chain.length - 1; i >= 0; i--) {
    const t = chain[i];
    const isHead = i === chain.length - 1;
    gradient = backward(b, t, gradient, isHead);
  }
  if (gradient === null) throw new UnsupportedLayerError('The conv layer is the output; nothing to explain.');

  const weights = b.op('ReduceMean', [gradient], 'cam_weights', { axes: [2, 3], keepdims: 1 });
  const weighted = b.op('Mul', [maps.name, weights], 'cam_weighted');
  const summed = b.op('ReduceSum', [weighted, b.int64s('cam_axis', [1])], 'cam_sum', { keepdims: 1 });
  const cam = b.op('Relu', [summed], 'cam');
  const batchAndChannel = b.op(
    'Slice',
    [b.op('Shape', [cam], 'cam_shape'), b.int64s('zero', [0]), b.int64s('two', [2])],
    'cam_nc',
  );
  const sizes = b.op('Concat', [batchAndChannel, b.int64s('cam_size', [inputSize, inputSize])], 'cam_sizes', {
    axis: 0,
  });
  return b.op('Resize', [cam, '', '', sizes], 'cam_upsampled', {
    mode: 'linear',
    coordinate_transformation_mode: 'asymmetric',
  });
}

/**
 * The gradient with respect to the layer's input, given the gradient with respect to its output (null: the
 * layer is the output and the gradient is 1 per image, of the logit when the layer is a sigmoid Dense).
 */
function backward(b: GraphBuilder, t: LayerTrace, g: string | null, isHead: boolean): string {
  const name = t.layer.name;
  const config = t.layer.getConfig() as Record<string, unknown>;
  const ones = (like: Value) =>
    b.op(
      'Expand',
      [b.floats(`${name}/one`, [1, 1], [1]), b.op('Shape', [like.name], `${name}_shape`)],
      `${name}_seed`,
    );
  switch (t.className) {
    case 'Dense': {
      const act = String(config.activation ?? 'linear');
      const pre = t.preActivation ?? t.output;
      let gPre: string;
      if (g === null) {
        // Grad-CAM differentiates the logit, not the saturating probability (see heatmap.ts, headOf).
        if (!isHead) throw new Error('unreachable: only the head has no incoming gradient');
        gPre =
          act === 'sigmoid' || act === 'linear' ? ones(pre) : activationBackward(b, t, ones(t.output), act);
      } else {
        gPre = activationBackward(b, t, g, act);
      }
      const kernel = t.layer.weights.find((w) => w.originalName.endsWith('/kernel'))!.read();
      const [inUnits, units] = kernel.shape;
      const values = kernel.dataSync();
      const transposed = new Float32Array(values.length);
      for (let i = 0; i < inUnits; i++)
        for (let u = 0; u < units; u++) transposed[u * inUnits + i] = values[i * units + u];
      return b.op(
        'MatMul',
        [gPre, b.floats(`${name}/kernel_T`, [units, inUnits], transposed)],
        `${name}_grad`,
      );
    }
    case 'Activation':
    case 'ReLU':
      if (t.className === 'ReLU' && config.maxValue != null) {
        throw new UnsupportedLayerError(`ReLU with a maximum ('${name}') in the head.`);
      }
      return activationBackward(
        b,
        t,
        g ?? ones(t.output),
        t.className === 'ReLU' ? 'relu' : String(config.activation),
      );
    case 'Dropout':
    case 'SpatialDropout2D':
    case 'GaussianDropout':
    case 'GaussianNoise':
      return g ?? ones(t.output);
    case 'BatchNormalization': {
      const read = (suffix: string) =>
        t.layer.weights
          .find((w) => w.originalName.endsWith(`/${suffix}`))
          ?.read()
          .dataSync();
      const variance = read('moving_variance')!;
      const gamma = read('gamma');
      const epsilon = Number(config.epsilon ?? 1e-3);
      const channels = t.input.shape[0];
      const scale = Float32Array.from(
        { length: channels },
        (_, c) => (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + epsilon),
      );
      const dims = t.input.layout === 'NCHW' ? [channels, 1, 1] : [channels];
      return b.op('Mul', [g ?? ones(t.output), b.floats(`${name}/grad_scale`, dims, scale)], `${name}_grad`);
    }
    case 'GlobalAveragePooling2D': {
      const [channels, height, width] = t.input.shape;
      const g4 = b.op(
        'Reshape',
        [g ?? ones(t.output), b.int64s(`${name}/shape`, [-1, channels, 1, 1])],
        `${name}_g4`,
      );
      const spread = b.op(
        'Expand',
        [g4, b.op('Shape', [t.input.name], `${name}_in_shape`)],
        `${name}_spread`,
      );
      return b.op('Mul', [spread, b.floats(`${name}/area`, [], [1 / (height * width)])], `${name}_grad`);
    }
    case 'Flatten': {
      if (t.input.layout === 'NC') return g ?? ones(t.output);
      const [channels, height, width] = t.input.shape;
      const nhwc = b.op(
        'Reshape',
        [g ?? ones(t.output), b.int64s(`${name}/shape`, [-1, height, width, channels])],
        `${name}_g_nhwc`,
      );
      return b.op('Transpose', [nhwc], `${name}_grad`, { perm: [0, 3, 1, 2] });
    }
    case 'MaxPooling2D': {
      if (!t.indices) throw new Error(`MaxPool '${name}' was exported without its indices.`);
      // Each window's gradient goes to its argmax (the first maximum, as in TF.js); indices count over the
      // whole N*C*H*W input, so one flat scatter-add rebuilds the input gradient.
      const flat = b.int64s(`${name}/flat`, [-1]);
      const inputShape = b.op('Shape', [t.input.name], `${name}_in_shape`);
      const zeros = b.op(
        'ConstantOfShape',
        [b.op('Shape', [b.op('Reshape', [t.input.name, flat], `${name}_in_flat`)], `${name}_numel`)],
        `${name}_zeros`,
      );
      const scattered = b.op(
        'ScatterElements',
        [
          zeros,
          b.op('Reshape', [t.indices, flat], `${name}_idx_flat`),
          b.op('Reshape', [g ?? ones(t.output), flat], `${name}_g_flat`),
        ],
        `${name}_scatter`,
        { axis: 0, reduction: 'add' },
      );
      return b.op('Reshape', [scattered, inputShape], `${name}_grad`);
    }
    default:
      throw new UnsupportedLayerError(`Grad-CAM cannot pass back through '${name}' (${t.className}).`);
  }
}

function activationBackward(b: GraphBuilder, t: LayerTrace, g: string, act: string): string {
  const name = t.layer.name;
  const y = t.output.name;
  switch (act) {
    case 'linear':
      return g;
    case 'relu': {
      const active = b.op('Greater', [y, b.floats(`${name}/zero`, [], [0])], `${name}_active`);
      return b.op('Where', [active, g, b.floats(`${name}/zero_g`, [], [0])], `${name}_act_grad`);
    }
    case 'sigmoid': {
      const slope = b.op(
        'Mul',
        [y, b.op('Sub', [b.floats(`${name}/one_s`, [], [1]), y], `${name}_1my`)],
        `${name}_slope`,
      );
      return b.op('Mul', [g, slope], `${name}_act_grad`);
    }
    case 'tanh': {
      const slope = b.op(
        'Sub',
        [b.floats(`${name}/one_t`, [], [1]), b.op('Mul', [y, y], `${name}_y2`)],
        `${name}_slope`,
      );
      return b.op('Mul', [g, slope], `${name}_act_grad`);
    }
    default:
      throw new UnsupportedLayerError(`Grad-CAM cannot pass back through activation '${act}' in '${name}'.`);
  }
}
