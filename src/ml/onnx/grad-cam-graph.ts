import { layerModule } from '../models/layers/registry';
import { type LayerTrace, UnsupportedLayerError } from '../models/layers/types';
import type { GraphBuilder } from './graph';

/**
 * Grad-CAM as part of the ONNX graph, so one onnxruntime run answers both the probability and its heat
 * map. onnxruntime has no automatic differentiation at inference, so the gradient of the ALL logit with
 * respect to the conv maps is written out layer by layer, backwards through the head (the layers after
 * the conv layer), each by its module's gradCam (../layers/registry.ts). It is the same quantity
 * src/ml/explanation/heatmap.ts gets from tf.grad, and the same map afterwards: channel weights = mean gradient,
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
    const backward = layerModule(t.className)?.gradCam;
    if (!backward) {
      throw new UnsupportedLayerError(
        `Grad-CAM cannot pass back through '${t.layer.name}' (${t.className}).`,
      );
    }
    gradient = backward(b, t, gradient);
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
