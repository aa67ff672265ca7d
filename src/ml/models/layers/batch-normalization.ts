import * as tf from '@tensorflow/tfjs';
import { exampleModel, gradCamSeed, requireWeight, weight } from './shared';
import { type LayerContext, type LayerModule, UnsupportedLayerError } from './types';

/**
 * BatchNormalization over the channel axis. Inference and Grad-CAM use the moving statistics; training
 * normalises with the batch's own and outputs them, so the trainer can update the moving averages as
 * TF.js does. Training needs scale and centre (both trainable).
 */
export const batchNormalization: LayerModule = {
  classNames: ['BatchNormalization'],

  exportForward(ctx) {
    expectChannelAxis(ctx);
    const { b, layer, config, input } = ctx;
    const name = layer.name;
    const channels = input.shape[0];
    const gamma = weight(layer, 'gamma')?.values ?? new Float32Array(channels).fill(1);
    const beta = weight(layer, 'beta')?.values ?? new Float32Array(channels);
    const out = b.op(
      'BatchNormalization',
      [
        input.name,
        b.floats(`${name}/gamma`, [channels], gamma),
        b.floats(`${name}/beta`, [channels], beta),
        b.floats(`${name}/mean`, [channels], requireWeight(layer, 'moving_mean').values),
        b.floats(`${name}/variance`, [channels], requireWeight(layer, 'moving_variance').values),
      ],
      name,
      { epsilon: { float: Number(config.epsilon ?? 1e-3) } },
    );
    return { output: { ...input, name: out } };
  },

  train(ctx) {
    expectChannelAxis(ctx);
    const { b, layer, config, input: x, parameter, graph } = ctx;
    const name = layer.name;
    if (config.scale === false || config.center === false) {
      throw new UnsupportedLayerError(`'${name}': batch norm without scale or centre is not supported.`);
    }
    const gamma = parameter('gamma');
    const beta = parameter('beta');
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
    const invStd = b.op(
      'Reciprocal',
      [b.op('Sqrt', [b.op('Add', [variance, epsilon], `${name}_var_eps`)], `${name}_std`)],
      `${name}_inv_std`,
    );
    const xhat = b.op('Mul', [centred, invStd], `${name}_xhat`);
    const gammaBroadcast = b.op('Reshape', [gamma.input, broadcast], `${name}_gamma_b`);
    const scaled = b.op('Mul', [xhat, gammaBroadcast], `${name}_scaled`);
    const out = b.op('Add', [scaled, b.op('Reshape', [beta.input, broadcast], `${name}_beta_b`)], name);
    const flat = b.int64s(`${name}/cshape`, [channels]);
    const meanOut = b.name(`bn_mean:${name}`);
    const varianceOut = b.name(`bn_variance:${name}`);
    b.output(b.op('Reshape', [mean, flat], `${name}_mean_flat`), meanOut, [channels]);
    b.output(b.op('Reshape', [variance, flat], `${name}_var_flat`), varianceOut, [channels]);
    graph.batchNorms.push({ layer, mean: meanOut, variance: varianceOut });
    return {
      output: { ...x, name: out },
      activation: 'linear',
      backward(g) {
        const sumAxes = b.int64s(`${name}/saxes`, axes);
        const gXhat = b.op('Mul', [g, xhat], `${name}_g_xhat`);
        b.output(b.op('ReduceSum', [gXhat, sumAxes], `${name}_dgamma`, { keepdims: 0 }), gamma.gradient, [
          channels,
        ]);
        b.output(b.op('ReduceSum', [g, sumAxes], `${name}_dbeta`, { keepdims: 0 }), beta.gradient, [
          channels,
        ]);
        // dx = invStd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means over the normalised axes.
        const dxhat = b.op('Mul', [g, gammaBroadcast], `${name}_dxhat`);
        const m1 = b.op('ReduceMean', [dxhat], `${name}_m1`, { axes, keepdims: 1 });
        const m2 = b.op('ReduceMean', [b.op('Mul', [dxhat, xhat], `${name}_dxhat_xhat`)], `${name}_m2`, {
          axes,
          keepdims: 1,
        });
        const inner = b.op(
          'Sub',
          [b.op('Sub', [dxhat, m1], `${name}_c1`), b.op('Mul', [xhat, m2], `${name}_c2`)],
          `${name}_inner`,
        );
        return b.op('Mul', [inner, invStd], `${name}_dx`);
      },
    };
  },

  gradCam(b, t, g) {
    const name = t.layer.name;
    const config = t.layer.getConfig() as Record<string, unknown>;
    const variance = requireWeight(t.layer, 'moving_variance').values;
    const gamma = weight(t.layer, 'gamma')?.values;
    const epsilon = Number(config.epsilon ?? 1e-3);
    const channels = t.input.shape[0];
    const scale = Float32Array.from(
      { length: channels },
      (_, c) => (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + epsilon),
    );
    const dims = t.input.layout === 'NCHW' ? [channels, 1, 1] : [channels];
    return b.op('Mul', [g ?? gradCamSeed(b, t), b.floats(`${name}/grad_scale`, dims, scale)], `${name}_grad`);
  },

  example: (size) =>
    exampleModel(size, [
      tf.layers.batchNormalization({
        gammaInitializer: tf.initializers.constant({ value: 1.3 }),
        betaInitializer: tf.initializers.constant({ value: 0.1 }),
        movingMeanInitializer: tf.initializers.constant({ value: 0.2 }),
        movingVarianceInitializer: tf.initializers.constant({ value: 1.5 }),
      }),
    ]),
};

/** Normalising the last (channel) axis, the only one we translate. */
function expectChannelAxis({ layer, config, input }: LayerContext): void {
  const axis = Number(config.axis ?? -1);
  const rank = input.layout === 'NCHW' ? 4 : 2;
  if (axis !== -1 && axis !== rank - 1)
    throw new UnsupportedLayerError(`'${layer.name}' normalises axis ${axis}.`);
}
