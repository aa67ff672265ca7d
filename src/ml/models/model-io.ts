import * as tf from '@tensorflow/tfjs';

/** The file the manifest points at; other code stores `weights` under this name beside model.json. */
export const WEIGHTS_FILE = 'weights.bin';

/**
 * A model as the two files of the standard TF.js layers format: model.json (topology and a weights
 * manifest naming 'weights.bin') and the weights. Stock tf.loadLayersModel('.../model.json') in a
 * browser loads the pair as is.
 */
export interface ModelBundle {
  modelJson: Record<string, unknown>;
  weights: Buffer;
}

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
 * against the manifest first, so a truncated or mismatched object fails with a message that says so.
 */
export async function loadModel(bundle: ModelBundle): Promise<tf.LayersModel> {
  const manifest = bundle.modelJson.weightsManifest as tf.io.WeightsManifestConfig | undefined;
  if (!bundle.modelJson.modelTopology || !Array.isArray(manifest)) {
    throw new Error('model.json lacks modelTopology or weightsManifest; it is not a TF.js layers model.');
  }
  const weightSpecs = manifest.flatMap((group) => group.weights);
  const expected = weightSpecs.reduce((bytes, spec) => bytes + byteSize(spec), 0);
  if (expected !== bundle.weights.byteLength) {
    throw new Error(`weights.bin has ${bundle.weights.byteLength} bytes; model.json describes ${expected}.`);
  }
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

function byteSize(spec: tf.io.WeightsManifestEntry): number {
  if (spec.quantization) {
    const bytesPer = spec.quantization.dtype === 'uint8' ? 1 : 2;
    return tf.util.sizeFromShape(spec.shape) * bytesPer;
  }
  const bytesPer: Record<string, number> = { float32: 4, int32: 4, bool: 1 };
  const per = bytesPer[spec.dtype];
  if (per === undefined) throw new Error(`Unsupported weight dtype '${spec.dtype}' in model.json.`);
  return tf.util.sizeFromShape(spec.shape) * per;
}
