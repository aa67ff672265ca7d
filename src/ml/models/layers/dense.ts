import * as tf from '@tensorflow/tfjs';
import { activationBackward, fusedActivation, trainFusedActivation } from './activations';
import { exampleModel, expectFlat, gradCamSeed, requireWeight, weight } from './shared';
import type { LayerModule, Value } from './types';

/** Dense with a fused activation, on flat features. */
export const dense: LayerModule = {
  classNames: ['Dense'],

  exportForward(ctx) {
    expectFlat(ctx);
    const { b, layer, config, input } = ctx;
    const name = layer.name;
    const kernel = requireWeight(layer, 'kernel'); // [in, units]
    const bias = config.useBias === false ? null : weight(layer, 'bias');
    const inputs = [input.name, b.floats(`${name}/kernel`, kernel.shape, kernel.values)];
    if (bias) inputs.push(b.floats(`${name}/bias`, bias.shape, bias.values));
    return fusedActivation(
      b,
      { name: b.op('Gemm', inputs, name), layout: 'NC', shape: [kernel.shape[1]] },
      config,
      name,
    );
  },

  train(ctx) {
    expectFlat(ctx);
    const { b, layer, config, input: x, parameter } = ctx;
    const name = layer.name;
    const kernel = parameter('kernel');
    const bias = config.useBias === false ? undefined : parameter('bias');
    const units = Number(config.units);
    const inputs = [x.name, kernel.input, ...(bias ? [bias.input] : [])];
    const pre: Value = { name: b.op('Gemm', inputs, name), layout: 'NC', shape: [units] };
    return trainFusedActivation(b, pre, config, name, (gPre, first) => {
      if (bias) {
        const db = b.op('ReduceSum', [gPre, b.int64s(`${name}/baxes`, [0])], `${name}_db`, { keepdims: 0 });
        b.output(db, bias.gradient, [units]);
      }
      const dK = b.op('Gemm', [x.name, gPre], `${name}_dK`, { transA: 1 });
      b.output(dK, kernel.gradient, [x.shape[0], units]);
      if (first) return '';
      return b.op('Gemm', [gPre, kernel.input], `${name}_dx`, { transB: 1 });
    });
  },

  gradCam(b, t, g) {
    const name = t.layer.name;
    const act = String((t.layer.getConfig() as Record<string, unknown>).activation ?? 'linear');
    const pre = t.preActivation ?? t.output;
    // Grad-CAM differentiates the output's logit, not the saturating probability (heatmap.ts, headOf).
    const gPre =
      g !== null
        ? activationBackward(b, g, t.output.name, act, name)
        : act === 'sigmoid' || act === 'linear'
          ? gradCamSeed(b, { ...t, output: pre })
          : activationBackward(b, gradCamSeed(b, t), t.output.name, act, name);
    const kernel = requireWeight(t.layer, 'kernel');
    const [inUnits, units] = kernel.shape;
    const transposed = new Float32Array(kernel.values.length);
    for (let i = 0; i < inUnits; i++)
      for (let u = 0; u < units; u++) transposed[u * inUnits + i] = kernel.values[i * units + u];
    return b.op('MatMul', [gPre, b.floats(`${name}/kernel_T`, [units, inUnits], transposed)], `${name}_grad`);
  },

  example: (size) =>
    exampleModel(size, [
      tf.layers.flatten(),
      tf.layers.dense({
        units: 4,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 12 }),
      }),
    ]),
};
