import type * as tf from '@tensorflow/tfjs';

/**
 * A model's stored form, and what can be read from it without TensorFlow.js: the API checks a served
 * version's files and finds its Grad-CAM layer here, and builds the TF.js model only when it needs it
 * (src/ml/serving/tfjs-network.ts). Building and saving are in model-io.ts.
 */

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

/**
 * The manifest's weight entries, once the bundle is known to be a layers model whose weights.bin holds
 * exactly the bytes they describe: a truncated or mismatched object fails here with a message that
 * says so, before anything is built from it.
 */
export function checkedWeightSpecs(bundle: ModelBundle): tf.io.WeightsManifestEntry[] {
  const manifest = bundle.modelJson.weightsManifest as tf.io.WeightsManifestConfig | undefined;
  if (!bundle.modelJson.modelTopology || !Array.isArray(manifest)) {
    throw new Error('model.json lacks modelTopology or weightsManifest; it is not a TF.js layers model.');
  }
  const weightSpecs = manifest.flatMap((group) => group.weights);
  const expected = weightSpecs.reduce((bytes, spec) => bytes + byteSize(spec), 0);
  if (expected !== bundle.weights.byteLength) {
    throw new Error(`weights.bin has ${bundle.weights.byteLength} bytes; model.json describes ${expected}.`);
  }
  return weightSpecs;
}

function byteSize(spec: tf.io.WeightsManifestEntry): number {
  const elements = spec.shape.reduce((n, d) => n * d, 1);
  if (spec.quantization) {
    const bytesPer = spec.quantization.dtype === 'uint8' ? 1 : 2;
    return elements * bytesPer;
  }
  const bytesPer: Record<string, number> = { float32: 4, int32: 4, bool: 1 };
  const per = bytesPer[spec.dtype];
  if (per === undefined) throw new Error(`Unsupported weight dtype '${spec.dtype}' in model.json.`);
  return elements * per;
}

type Topology = { config?: { layers?: { name?: unknown; config?: { name?: unknown } }[] } };

/**
 * The names of the layers in model.json's topology, as the built model's `layers` carries them
 * (Sequential and functional models both give each layer's `config.name`; a topology converted from
 * Keras wraps the model in `model_config`, which TF.js unwraps the same way when it loads one).
 */
export function topologyLayerNames(modelJson: ModelBundle['modelJson']): string[] {
  const stored = modelJson.modelTopology as (Topology & { model_config?: Topology }) | undefined;
  const topology = stored?.model_config ?? stored;
  return (topology?.config?.layers ?? []).flatMap((layer) => {
    const name = layer.config?.name ?? layer.name;
    return typeof name === 'string' ? [name] : [];
  });
}
