import type * as tf from '@tensorflow/tfjs';

/**
 * The layers from `from` (exclusive) to the model's output, in order, when they form a chain: each feeds
 * exactly one layer that reads nothing else, and none is shared. Otherwise a sentence saying where the
 * chain breaks. Grad-CAM (TF.js and ONNX) walks the head after the conv layer this way; the ONNX training
 * graph walks the whole model from its input layer.
 */
export function layersAfter(model: tf.LayersModel, from: tf.layers.Layer): tf.layers.Layer[] | string {
  const outputLayer = model.outputs[0].sourceLayer;
  const chain: tf.layers.Layer[] = [];
  let current = from;
  while (current !== outputLayer) {
    const previous = current;
    const consumers = model.layers.filter((layer) =>
      layer.inboundNodes.some((node) => node.inboundLayers.includes(previous)),
    );
    const next = consumers[0];
    if (
      consumers.length !== 1 ||
      next.inboundNodes.length !== 1 ||
      next.inboundNodes[0].inboundLayers.length !== 1
    ) {
      return `'${previous.name}' feeds ${consumers.length} layers, or one that reads several or is shared.`;
    }
    current = next;
    chain.push(current);
  }
  return chain;
}
