import * as tf from '@tensorflow/tfjs';
import { badInput } from '../../errors';
import { LAST_CONV_LAYER } from '../models/architecture-names';
import { layersAfter } from '../models/layers/chain';

export interface GradCamResult {
  /** The model's output for the input, from the same forward pass. */
  probabilityAll: number;
  /** size x size values in [0, 1], row-major: 1 where the evidence for `target` is strongest. */
  heatmap: Float32Array;
  /** The class whose evidence the map shows. */
  target: 'all' | 'hem';
}

/**
 * The layers after the conv layer, which Grad-CAM re-applies to the conv maps: only well defined when they
 * form a chain (true of every architecture in architectures.ts).
 */
function headAfter(model: tf.LayersModel, from: tf.layers.Layer): tf.layers.Layer[] {
  const chain = layersAfter(model, from);
  if (typeof chain === 'string')
    throw badInput(`Grad-CAM needs a chain of layers after '${from.name}'; ${chain}`);
  return chain;
}

/**
 * Re-applies the head of the network to conv maps. For the usual dense sigmoid output it returns the
 * logit rather than the probability: a confident prediction saturates the sigmoid, and its gradient
 * underflows to 0 in float32 long before the logit's does. Grad-CAM's final normalisation removes the
 * positive factor p(1 - p) between the two, so the maps are otherwise identical.
 */
function headOf(chain: tf.layers.Layer[]): { score: (maps: tf.Tensor) => tf.Tensor; isLogit: boolean } {
  const last = chain[chain.length - 1];
  const config = last?.getConfig() as { activation?: string; useBias?: boolean } | undefined;
  const isLogit = last?.getClassName() === 'Dense' && config?.activation === 'sigmoid';
  const body = isLogit ? chain.slice(0, -1) : chain;
  const score = (maps: tf.Tensor) => {
    let x = maps;
    for (const layer of body) x = layer.apply(x) as tf.Tensor;
    if (!isLogit) return x;
    const [kernel, bias] = last.getWeights();
    const logit = tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D);
    return config?.useBias === false ? logit : tf.add(logit, bias);
  };
  return { score, isLogit };
}

/**
 * Grad-CAM (Selvaraju et al., 2017) for a model with one sigmoid output, the probability of ALL: the
 * conv layer's maps, weighted by the mean gradient of the output's logit with respect to each map,
 * summed, passed through ReLU (only evidence *for* the target), bilinearly upsampled to the input size
 * and divided by its maximum. `target` 'hem' flips the gradient's sign, showing what argued for normal.
 * A map with no positive evidence comes back all zeros.
 *
 * `input` is [1, size, size, 3]. Inference mode (dropout off, batch-norm moving statistics). Every
 * intermediate tensor is released; `input` stays the caller's.
 */
export function gradCam(
  model: tf.LayersModel,
  input: tf.Tensor4D,
  layerName = LAST_CONV_LAYER,
  target: 'all' | 'hem' = 'all',
): GradCamResult {
  const [batch, height, width] = input.shape;
  if (batch !== 1) throw badInput(`Grad-CAM explains one image at a time; got a batch of ${batch}.`);
  const convLayer = model.layers.find((layer) => layer.name === layerName);
  if (!convLayer) throw badInput(`The model has no layer named '${layerName}' to explain.`);
  const { score, isLogit } = headOf(headAfter(model, convLayer));
  const convOutput = convLayer.output as tf.SymbolicTensor;

  return tf.tidy(() => {
    const maps = model.execute(input, convOutput.name) as tf.Tensor4D;
    const sign = target === 'all' ? 1 : -1;
    const outputs: tf.Tensor[] = [];
    const gradients = tf.grad((a: tf.Tensor) => {
      const value = score(a);
      outputs.push(tf.keep(value.clone()));
      return tf.mul(tf.sum(value), sign);
    })(maps);
    const value = outputs[0].dataSync()[0];
    outputs.forEach((t) => t.dispose());
    const probabilityAll = isLogit ? 1 / (1 + Math.exp(-value)) : value;

    const weights = tf.mean(gradients, [1, 2], true); // [1, 1, 1, channels]
    const cam = tf.relu(tf.sum(tf.mul(maps, weights), -1, true)) as tf.Tensor4D; // [1, h', w', 1]
    const upsampled = tf.image.resizeBilinear(cam, [height, width]);
    const peak = tf.max(upsampled).dataSync()[0];
    const heatmap = new Float32Array(height * width);
    if (peak > 0) {
      const values = upsampled.dataSync();
      for (let i = 0; i < heatmap.length; i++) heatmap[i] = Math.min(1, values[i] / peak);
    }
    return { probabilityAll, heatmap, target };
  });
}
