import type * as tf from '@tensorflow/tfjs';
import { UnsupportedLayerError } from './export';
import { OnnxTrainer, type TrainingBatch } from './trainer';

/** What ran a training run's forward and backward passes. */
export type TrainingRuntime = 'onnxruntime' | 'tfjs';

/**
 * LYMPHOSCOPE_TRAIN_RUNTIME: 'onnxruntime' (the default where onnxruntime-node loads) or 'tfjs', the
 * TF.js backend alone (for comparison, and the fallback). Read at every call so a benchmark or test can
 * run both in one process.
 */
export function requestedTrainingRuntime(): TrainingRuntime {
  const value = process.env.LYMPHOSCOPE_TRAIN_RUNTIME?.trim().toLowerCase() || 'onnxruntime';
  if (value !== 'onnxruntime' && value !== 'tfjs') {
    throw new Error(`LYMPHOSCOPE_TRAIN_RUNTIME must be 'onnxruntime' or 'tfjs', not '${value}'.`);
  }
  return value;
}

/**
 * The onnxruntime trainer for `model`, or null when training should stay on TF.js: asked for, nothing
 * to train (the majority baseline), a layer the training graph does not support, onnxruntime-node not
 * loading, or any other failure to build the session. Never throws: `onFallback` hears why, and
 * training goes on at TF.js speed rather than not at all.
 */
export async function acceleratedTrainer(
  model: tf.LayersModel,
  onFallback?: (reason: string) => void,
): Promise<OnnxTrainer | null> {
  if (requestedTrainingRuntime() === 'tfjs' || model.trainableWeights.length === 0) return null;
  try {
    return await OnnxTrainer.create(model);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    onFallback?.(error instanceof UnsupportedLayerError ? reason : `onnxruntime failed: ${reason}`);
    return null;
  }
}

/**
 * train.ts's step on onnxruntime: the same per-image class weights as its TF.js trainStep, then
 * forward, backward and the optimizer update (see OnnxTrainer.step).
 */
export function acceleratedStep(
  trainer: OnnxTrainer,
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  batch: TrainingBatch,
  classWeight: [number, number],
): Promise<{ loss: number; correct: number }> {
  batch.labels.forEach((label, i) => (batch.weights[i] = classWeight[label]));
  return trainer.step(batch, optimizer, variables);
}
