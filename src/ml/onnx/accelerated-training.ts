import type * as tf from '@tensorflow/tfjs';
import { exportOnnx, UnsupportedLayerError } from './export';
import { OnnxClassifier } from './session';
import { mlSettings, type TrainingRuntime } from '../settings';
import { OnnxTrainer, type TrainingBatch } from './trainer';

/**
 * MlSettings.trainingRuntime (LYMPHOSCOPE_TRAIN_RUNTIME): 'onnxruntime' (the default where
 * onnxruntime-node loads) or 'tfjs', the TF.js backend alone (for comparison, and the fallback). Read at
 * every call so a benchmark or test can run both in one process.
 */
export function requestedTrainingRuntime(): TrainingRuntime {
  return mlSettings().trainingRuntime;
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

/**
 * Validation's forward pass on onnxruntime: `model` as it stands, exported (inference mode: moving
 * statistics, no dropout; no Grad-CAM, so one session, not two) into a session the caller disposes. Null
 * where training runs on TF.js or the export or session fails: validation then predicts with TF.js.
 */
export async function acceleratedPredictor(
  model: tf.LayersModel,
  trainer: OnnxTrainer | null,
): Promise<OnnxClassifier | null> {
  if (!trainer) return null;
  try {
    const { bytes } = exportOnnx(model, { gradCamLayer: null });
    return await OnnxClassifier.create(bytes, model.inputs[0].shape[1] as number, {
      threads: trainer.threads,
    });
  } catch {
    return null;
  }
}
