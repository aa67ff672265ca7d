import * as tf from '@tensorflow/tfjs';
import { activation, activationBackward, clip } from './activations';
import { exampleModel, gradCamSeed } from './shared';
import { type LayerModule, UnsupportedLayerError } from './types';

/**
 * Activation and ReLU layers. What each activation can do is said in activations.ts; a ReLU with a maximum
 * (a clip) exports but has no gradient here.
 */
export const activationLayer: LayerModule = {
  classNames: ['Activation', 'ReLU'],

  exportForward({ b, layer, config, input }) {
    if (layer.getClassName() === 'ReLU' && config.maxValue != null) {
      return { output: clip(b, input, 0, Number(config.maxValue), layer.name) };
    }
    return { output: activation(b, input, activationOf(layer, config), layer.name) };
  },

  train({ b, layer, config, input }) {
    const act = activationOf(layer, config, 'trained in onnxruntime');
    const output = activation(b, input, act, layer.name);
    return {
      output,
      activation: act,
      backward: (g) => activationBackward(b, g, output.name, act, layer.name),
    };
  },

  gradCam(b, t, g) {
    const config = t.layer.getConfig() as Record<string, unknown>;
    const act = activationOf(t.layer, config, 'passed back by Grad-CAM');
    return activationBackward(b, g ?? gradCamSeed(b, t), t.output.name, act, t.layer.name);
  },

  example: (size) => exampleModel(size, [tf.layers.activation({ activation: 'tanh' })]),
};

/** The layer's activation; `differentiated` says for what, where a ReLU with a maximum cannot be. */
function activationOf(
  layer: tf.layers.Layer,
  config: Record<string, unknown>,
  differentiated?: string,
): string {
  if (layer.getClassName() !== 'ReLU') return String(config.activation);
  if (differentiated && config.maxValue != null) {
    throw new UnsupportedLayerError(`ReLU with a maximum ('${layer.name}') cannot be ${differentiated}.`);
  }
  return 'relu';
}
