import * as tf from '@tensorflow/tfjs';
import { gradCam } from '../explanation/grad-cam';
import type { NetworkPasses } from './network-passes';

/**
 * The network's forward passes in TF.js, for a version onnxruntime does not serve (or whose ONNX twin has
 * no Grad-CAM). predictor.ts imports this module only when it needs it, so that a process served by
 * onnxruntime alone never loads TensorFlow.js.
 */
export function tfjsPasses(model: tf.LayersModel): NetworkPasses {
  return {
    first: (pixels, inputSize, explain) => predictWithTfjs(model, pixels, inputSize, explain),
    rest: (flat, count, inputSize) => predictBatchWithTfjs(model, flat, count, inputSize),
  };
}

async function predictWithTfjs(
  model: tf.LayersModel,
  pixels: Float32Array,
  inputSize: number,
  explain: boolean,
): Promise<{ probabilityAll: number; heatmap: Float32Array | null }> {
  const input = tf.tensor4d(pixels, [1, inputSize, inputSize, 3]);
  try {
    if (explain) return gradCam(model, input);
    const output = tf.tidy(() => model.predict(input) as tf.Tensor);
    const probabilityAll = (await output.data())[0];
    output.dispose();
    return { probabilityAll, heatmap: null };
  } finally {
    input.dispose();
  }
}

async function predictBatchWithTfjs(
  model: tf.LayersModel,
  flat: Float32Array,
  count: number,
  inputSize: number,
): Promise<Float32Array> {
  const output = tf.tidy(
    () => model.predict(tf.tensor4d(flat, [count, inputSize, inputSize, 3])) as tf.Tensor,
  );
  try {
    return (await output.data()) as Float32Array;
  } finally {
    output.dispose();
  }
}
