import * as tf from '@tensorflow/tfjs';
import { exampleModel, gradCamSeed } from './shared';
import { type LayerModule, UnsupportedLayerError } from './types';

/** Noise layers are the identity at inference, so for export and Grad-CAM. */
const identityAtInference: Pick<LayerModule, 'exportForward' | 'gradCam'> = {
  exportForward: ({ input }) => ({ output: input }),
  gradCam: (b, t, g) => g ?? gradCamSeed(b, t),
};

/**
 * Dropout. Training in onnxruntime takes the mask as a graph input (the trainer draws it with tf.dropout
 * and the layer's seed, as TF.js would), on flat features only.
 */
export const dropout: LayerModule = {
  classNames: ['Dropout'],
  ...identityAtInference,
  train({ b, layer, config, input: x, graph }) {
    const rate = Number(config.rate ?? 0);
    // TF.js applies no dropout outside (0, 1).
    if (rate <= 0 || rate >= 1) return { output: x, activation: 'linear', backward: (g) => g };
    if (x.layout !== 'NC' || config.noiseShape != null) {
      throw new UnsupportedLayerError(
        `'${layer.name}': only dropout on flat features trains in onnxruntime.`,
      );
    }
    const mask = b.input(b.name(`dropout_mask:${layer.name}`), ['N', x.shape[0]]);
    graph.dropouts.push({ layer, input: mask, features: x.shape[0], rate });
    return {
      output: { ...x, name: b.op('Mul', [x.name, mask], layer.name) },
      activation: 'linear',
      backward: (g) => b.op('Mul', [g, mask], `${layer.name}_dx`),
    };
  },
  example: (size) => exampleModel(size, [tf.layers.flatten(), tf.layers.dropout({ rate: 0.25, seed: 5 })]),
};

/** SpatialDropout2D, GaussianDropout, GaussianNoise: inference only (TF.js trains a model with them). */
export const noiseLayers: LayerModule = {
  classNames: ['SpatialDropout2D', 'GaussianDropout', 'GaussianNoise'],
  ...identityAtInference,
  example: (size) => exampleModel(size, [tf.layers.gaussianNoise({ stddev: 0.1 })]),
};
