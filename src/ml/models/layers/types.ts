import type * as tf from '@tensorflow/tfjs';
import type { GraphBuilder } from '../../onnx/graph';

/** A layer (or a whole model) that one of the ONNX graphs cannot translate; the caller falls back or refuses. */
export class UnsupportedLayerError extends Error {}

/**
 * A tensor of an ONNX graph being built. Feature maps are kept NCHW, the layout onnxruntime's convolutions
 * want; the model's input stays NHWC (what preprocessing produces and the TF.js model takes) and is
 * transposed once. `shape` excludes the batch axis: [C, H, W] for 'NCHW', [features] for 'NC'.
 */
export interface Value {
  name: string;
  layout: 'NCHW' | 'NC';
  shape: number[];
}

/** What one layer turned into in the inference graph, kept for Grad-CAM, which walks the head backwards. */
export interface LayerTrace {
  layer: tf.layers.Layer;
  className: string;
  input: Value;
  output: Value;
  /** Pre-activation value of a Conv2D/Dense with a fused activation. */
  preActivation?: Value;
  /** MaxPool's argmax indices, asked for only on layers the Grad-CAM gradient flows through. */
  indices?: string;
}

/** A trainable weight of the training graph: fed in, its gradient read out. */
export interface TrainingGraphParameter {
  /** The tf.Variable's name, the key optimizer.applyGradients expects. */
  variableName: string;
  input: string;
  gradient: string;
}

export interface TrainingGraph {
  inputSize: number;
  parameters: TrainingGraphParameter[];
  /** Graph outputs with each batch-norm layer's batch mean and (biased) variance. */
  batchNorms: Array<{ layer: tf.layers.Layer; mean: string; variance: string }>;
  /** Graph inputs for each dropout layer's mask: [N, features], already divided by the keep probability. */
  dropouts: Array<{ layer: tf.layers.Layer; input: string; features: number; rate: number }>;
}

/** What a layer module is given to add its nodes. */
export interface LayerContext {
  b: GraphBuilder;
  layer: tf.layers.Layer;
  config: Record<string, unknown>;
  input: Value;
}

export interface ExportContext extends LayerContext {
  /** Grad-CAM will pass back through this layer: keep what its backward needs (max-pool indices). */
  onGradCamPath: boolean;
}

export interface TrainContext extends LayerContext {
  /** The layer's trainable weight `suffix` as a graph input; throws when it is missing or frozen. */
  parameter(suffix: string): TrainingGraphParameter;
  graph: TrainingGraph;
}

/** A layer's part of the training graph: its forward nodes, and a closure that emits its backward nodes. */
export interface TrainedLayer {
  output: Value;
  /** The activation the layer ends in ('linear' when none); the loss needs a sigmoid at the end. */
  activation: string;
  /**
   * Emits the parameter gradients as graph outputs and returns d loss / d input, given d loss / d output;
   * '' when `first` (nothing upstream needs it).
   */
  backward(g: string, first: boolean): string;
}

/**
 * Everything about one TF.js layer type in ONNX, in one module (see ../../../docs/ARCHITECTURE.md, "Layer
 * modules"): the inference forward nodes, the training forward and backward nodes, the Grad-CAM backward
 * and a small model that checks all of it against TF.js (test/ml/models/layers/layers.test.ts). A missing
 * `train` or `gradCam` is the one statement of what the layer cannot do; layer-specific limits (a strided
 * convolution, say) are thrown as UnsupportedLayerError from inside.
 */
export interface LayerModule {
  /** TF.js class names (layer.getClassName()) this module translates. */
  classNames: readonly string[];
  /** Inference: the layer's nodes; `output` [N, ...] in NCHW or NC. */
  exportForward(ctx: ExportContext): Omit<LayerTrace, 'layer' | 'className' | 'input'>;
  /** Training mode (batch statistics, dropout masks) forward, with its backward. Absent: TF.js trains it. */
  train?(ctx: TrainContext): TrainedLayer;
  /**
   * d score / d input for Grad-CAM at inference (moving statistics, no dropout), given d score / d output;
   * `g` is null when the layer is the model's output (the score is its logit, or its output). Absent: a
   * model with this layer after the conv layer is served without an ONNX heat map.
   */
  gradCam?(b: GraphBuilder, trace: LayerTrace, g: string | null): string;
  /**
   * A small model with this layer after a conv layer named 'last_conv', ending in one sigmoid unit named
   * 'probability_all', as the layer's check against TF.js builds it.
   */
  example(inputSize: number): tf.LayersModel;
}
