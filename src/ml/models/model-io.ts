import * as tf from '@tensorflow/tfjs';
import { checkedWeightSpecs, WEIGHTS_FILE, type ModelBundle } from './model-bundle';

/** Serialises topology and every weight (trainable or not, e.g. batch-norm moving statistics), in memory. */
export async function serializeModel(model: tf.LayersModel): Promise<ModelBundle> {
  let bundle: ModelBundle | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      if (!artifacts.modelTopology || !artifacts.weightSpecs || artifacts.weightData === undefined) {
        throw new Error('The model produced no topology or weights to save.');
      }
      const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const modelJson: Record<string, unknown> = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
      };
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      bundle = { modelJson, weights: Buffer.from(weightData) };
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          weightDataBytes: weightData.byteLength,
        },
      };
    }),
  );
  if (!bundle) throw new Error('Saving the model produced no artifacts.');
  return bundle;
}

/**
 * Loads a bundle written by serializeModel (or any single-shard layers model). The weights are checked
 * against the manifest first (checkedWeightSpecs), so a truncated or mismatched object fails with a
 * message that says so.
 */
export async function loadModel(bundle: ModelBundle): Promise<tf.LayersModel> {
  const weightSpecs = checkedWeightSpecs(bundle);
  const weightData = bundle.weights.buffer.slice(
    bundle.weights.byteOffset,
    bundle.weights.byteOffset + bundle.weights.byteLength,
  ) as ArrayBuffer;
  const artifacts = tf.io.getModelArtifactsForJSONSync(
    bundle.modelJson as unknown as tf.io.ModelJSON,
    weightSpecs,
    weightData,
  );
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}
