import type * as tf from '@tensorflow/tfjs';
import { LAST_CONV_LAYER } from '../models/architecture-names';
import { layersAfter } from '../models/layers/chain';
import { layerModule } from '../models/layers/registry';
import { type LayerTrace, UnsupportedLayerError, type Value } from '../models/layers/types';
import { appendGradCam } from './grad-cam-graph';
import { GraphBuilder } from './graph';
import { ONNX_GRAD_CAM, ONNX_INPUT, ONNX_PROBABILITY } from './names';

export { UnsupportedLayerError, type LayerTrace, type Value };

export interface OnnxExport {
  bytes: Uint8Array;
  inputSize: number;
  /** Whether the graph has the ONNX_GRAD_CAM output; false when the head has a layer we cannot differentiate. */
  gradCam: boolean;
  /** Why there is no Grad-CAM output, when there is none. */
  gradCamSkipped?: string;
}

/**
 * Translates a TF.js layers model of the kind architectures.ts builds (one NHWC RGB input, a chain or DAG
 * of Conv2D, BatchNormalization, activations, pooling, Flatten, Dense, Dropout, one output) into an ONNX
 * model for onnxruntime: input 'image' [N, size, size, 3] NHWC, output 'probability_all' [N, units].
 *
 * When the model has a layer named `last_conv` followed by a chain of layers we can differentiate, the graph
 * also computes Grad-CAM (see grad-cam-graph.ts), so serving can explain without TF.js. Weights are read
 * from the model's variables, which needs an initialised TF.js backend. `gradCamLayer: null` writes the
 * classifier alone (training's validation reads only probabilities).
 */
export function exportOnnx(model: tf.LayersModel, opts: { gradCamLayer?: string | null } = {}): OnnxExport {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new UnsupportedLayerError('Only models with one input and one output can be exported.');
  }
  const inputShape = model.inputs[0].shape;
  if (inputShape.length !== 4 || inputShape[3] !== 3 || inputShape[1] !== inputShape[2]) {
    throw new UnsupportedLayerError(`Expected a square RGB NHWC input, got [${inputShape.join(', ')}].`);
  }
  const inputSize = inputShape[1] as number;
  const camLayerName = opts.gradCamLayer === undefined ? LAST_CONV_LAYER : opts.gradCamLayer;
  const camLayer = camLayerName === null ? undefined : model.layers.find((l) => l.name === camLayerName);
  const head = camLayer ? layersAfter(model, camLayer) : [];
  const chain = typeof head === 'string' ? [] : head;

  const b = new GraphBuilder();
  b.reserve(ONNX_PROBABILITY);
  b.reserve(ONNX_GRAD_CAM);
  const image = b.input(ONNX_INPUT, ['N', inputSize, inputSize, 3]);
  const values = new Map<string, Value>();
  values.set(model.inputs[0].name, {
    name: b.op('Transpose', [image], 'image_nchw', { perm: [0, 3, 1, 2] }),
    layout: 'NCHW',
    shape: [3, inputSize, inputSize],
  });
  const traces = new Map<string, LayerTrace>();
  const withIndices = new Set(chain.map((l) => l.name));
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (className === 'InputLayer') continue;
    const node = layer.inboundNodes[0];
    if (layer.inboundNodes.length !== 1 || node.inputTensors.length !== 1) {
      throw new UnsupportedLayerError(`Layer '${layer.name}' is shared or has several inputs.`);
    }
    const input = values.get(node.inputTensors[0].name);
    if (!input) throw new Error(`Layer '${layer.name}' reads a tensor not yet exported.`);
    const module = layerModule(className);
    if (!module) {
      throw new UnsupportedLayerError(
        `Layer '${layer.name}' of type ${className} cannot be exported to ONNX.`,
      );
    }
    const config = layer.getConfig() as Record<string, unknown>;
    const onGradCamPath = withIndices.has(layer.name);
    const trace: LayerTrace = {
      layer,
      className,
      input,
      ...module.exportForward({ b, layer, config, input, onGradCamPath }),
    };
    values.set(node.outputTensors[0].name, trace.output);
    traces.set(layer.name, trace);
  }

  const result = values.get(model.outputs[0].name);
  if (!result || result.layout !== 'NC')
    throw new UnsupportedLayerError('The model output is not [N, units].');
  b.output(result.name, ONNX_PROBABILITY, ['N', ...result.shape]);

  let gradCam = false;
  let gradCamSkipped: string | undefined =
    chain.length > 0
      ? undefined
      : typeof head === 'string'
        ? head
        : camLayerName === null
          ? 'not asked for'
          : `no '${camLayerName}' layer`;
  if (chain.length > 0) {
    try {
      const cam = appendGradCam(
        b,
        traces.get(camLayer!.name)!,
        chain.map((l) => traces.get(l.name)!),
        inputSize,
      );
      b.output(cam, ONNX_GRAD_CAM, ['N', 1, inputSize, inputSize]);
      gradCam = true;
    } catch (error) {
      if (!(error instanceof UnsupportedLayerError)) throw error;
      gradCamSkipped = error.message;
    }
  }
  const bytes = b.encode(model.name, `Exported from the TF.js model '${model.name}' by Lymphoscope.`);
  return { bytes, inputSize, gradCam, ...(gradCamSkipped ? { gradCamSkipped } : {}) };
}
