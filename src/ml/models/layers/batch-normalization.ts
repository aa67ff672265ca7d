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
      { epsilon: { float: epsilonOf(config) } },
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
    const flat = b.int64s(`${name}/cshape`, [channels]);
    const perChannel = (value: string, hint: string) => b.op('Reshape', [value, flat], `${name}_${hint}`);
    // Each node over x, its centred copy or the gradient is a pass over memory, and at block 1's full
    // resolution those passes outweigh the convolutions (docs/PERFORMANCE.md, "Where a training step
    // goes"). So the per-channel arithmetic is done on [C] vectors, and the passes over whole tensors are
    // kept to 5 forward and 6 backward (they were 7 and 11): normalising with the batch's statistics is
    // one BatchNormalization node, and so is a per-channel scale and shift of the gradient (mean 0,
    // variance 1, epsilon 0).
    const mean = b.op('ReduceMean', [x.name], `${name}_mean`, { axes, keepdims: 1 });
    const centred = b.op('Sub', [x.name, mean], `${name}_centred`);
    // Not ReduceSumSquare: onnxruntime's float32 sum of squares was 2e-3 off over 300,000 values per
    // channel (block 1's count) and lymphonet's gradients up to 14% off; this is 4e-6 (trainer.test.ts).
    const variance = perChannel(
      b.op('ReduceMean', [b.op('Mul', [centred, centred], `${name}_sq`)], `${name}_var_k`, {
        axes,
        keepdims: 1,
      }),
      'var',
    );
    const meanFlat = perChannel(mean, 'mean_flat');
    const epsilonValue = epsilonOf(config);
    // (x - mean) / sqrt(variance + epsilon) * gamma + beta, the batch's statistics as the node's.
    const out = b.op('BatchNormalization', [x.name, gamma.input, beta.input, meanFlat, variance], name, {
      epsilon: { float: epsilonValue },
    });
    const meanOut = b.name(`bn_mean:${name}`);
    const varianceOut = b.name(`bn_variance:${name}`);
    b.output(meanFlat, meanOut, [channels]);
    b.output(variance, varianceOut, [channels]);
    graph.batchNorms.push({ layer, mean: meanOut, variance: varianceOut });
    return {
      output: { ...x, name: out },
      activation: 'linear',
      backward(g) {
        const sumAxes = b.int64s(`${name}/saxes`, axes);
        const sum = (value: string, hint: string) =>
          b.op('ReduceSum', [value, sumAxes], `${name}_${hint}`, { keepdims: 0 });
        // M, the values per channel: the batch's size is known only at run time.
        const count = b.op(
          'Div',
          [
            b.op('Cast', [b.op('Size', [x.name], `${name}_size`)], `${name}_size_f`, { to: 1 }),
            b.floats(`${name}/channels`, [], [channels]),
          ],
          `${name}_count`,
        );
        const invStd = b.op(
          'Reciprocal',
          [
            b.op(
              'Sqrt',
              [b.op('Add', [variance, b.floats(`${name}/epsilon`, [], [epsilonValue])], `${name}_var_eps`)],
              `${name}_std`,
            ),
          ],
          `${name}_inv_std`,
        );
        // With xhat = centred * invStd: dgamma = sum(g * xhat), dbeta = sum(g), and
        // dx = gamma * invStd * (g - dbeta / M - xhat * dgamma / M), M values per channel, so
        // dx = a * g + c + s * centred with the per-channel a = gamma * invStd, c = -a * dbeta / M and
        // s = -a * invStd * dgamma / M.
        const gCentred = sum(b.op('Mul', [g, centred], `${name}_g_centred`), 'g_centred_sum');
        const dgamma = b.op('Mul', [gCentred, invStd], `${name}_dgamma`);
        const dbeta = sum(g, 'dbeta');
        b.output(dgamma, gamma.gradient, [channels]);
        b.output(dbeta, beta.gradient, [channels]);
        const a = b.op('Mul', [gamma.input, invStd], `${name}_a`);
        const aOverM = b.op('Div', [a, count], `${name}_a_m`);
        const c = b.op('Neg', [b.op('Mul', [aOverM, dbeta], `${name}_a_dbeta`)], `${name}_c`);
        const s = b.op(
          'Neg',
          [b.op('Mul', [b.op('Mul', [aOverM, invStd], `${name}_a_inv_m`), dgamma], `${name}_s_pos`)],
          `${name}_s`,
        );
        const zero = b.floats(`${name}/zero`, [channels], new Float32Array(channels));
        const one = b.floats(`${name}/one`, [channels], new Float32Array(channels).fill(1));
        const scaled = b.op('BatchNormalization', [g, a, c, zero, one], `${name}_ag_c`, {
          epsilon: { float: 0 },
        });
        const tilt = b.op('Mul', [centred, b.op('Reshape', [s, broadcast], `${name}_s_b`)], `${name}_tilt`);
        return b.op('Add', [scaled, tilt], `${name}_dx`);
      },
    };
  },

  gradCam(b, t, g) {
    const name = t.layer.name;
    const config = t.layer.getConfig() as Record<string, unknown>;
    const variance = requireWeight(t.layer, 'moving_variance').values;
    const gamma = weight(t.layer, 'gamma')?.values;
    const epsilon = epsilonOf(config);
    const channels = t.input.shape[0];
    const scale = Float32Array.from(
      { length: channels },
      (_, c) => (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + epsilon),
    );
    const dims = t.input.layout === 'NCHW' ? [channels, 1, 1] : [channels];
    return b.op('Mul', [g ?? gradCamSeed(b, t), b.floats(`${name}/grad_scale`, dims, scale)], `${name}_grad`);
  },

  // On feature maps, then on features (the NC layout), with a ReLU between: without it the second norm
  // would take away any shift of the first, and the first's beta would have no gradient to compare.
  example: (size) =>
    exampleModel(size, [
      tf.layers.batchNormalization({
        gammaInitializer: tf.initializers.constant({ value: 1.3 }),
        betaInitializer: tf.initializers.constant({ value: 0.1 }),
        movingMeanInitializer: tf.initializers.constant({ value: 0.2 }),
        movingVarianceInitializer: tf.initializers.constant({ value: 1.5 }),
      }),
      tf.layers.activation({ activation: 'relu' }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.batchNormalization({
        gammaInitializer: tf.initializers.constant({ value: 0.8 }),
        betaInitializer: tf.initializers.constant({ value: -0.1 }),
        movingMeanInitializer: tf.initializers.constant({ value: 0.1 }),
        movingVarianceInitializer: tf.initializers.constant({ value: 0.7 }),
      }),
    ]),
};

/** The layer's epsilon, with TF.js' default. */
function epsilonOf(config: Record<string, unknown>): number {
  return Number(config.epsilon ?? 1e-3);
}

/** Normalising the last (channel) axis, the only one we translate. */
function expectChannelAxis({ layer, config, input }: LayerContext): void {
  const axis = Number(config.axis ?? -1);
  const rank = input.layout === 'NCHW' ? 4 : 2;
  if (axis !== -1 && axis !== rank - 1)
    throw new UnsupportedLayerError(`'${layer.name}' normalises axis ${axis}.`);
}
