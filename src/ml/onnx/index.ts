import { loadModel } from '../models/model-io';
import type { ModelBundle } from '../models/model-bundle';
import { initRuntime } from '../runtime';
import { exportOnnx, type OnnxExport } from './export';

export { exportOnnx, UnsupportedLayerError, type OnnxExport } from './export';
export { OnnxClassifier, onnxRuntime, onnxRuntimeError, type OnnxSessionOptions } from './session';

/**
 * The ONNX twin of a stored TF.js model (model.json + weights.bin), as registration writes it beside them.
 * Throws UnsupportedLayerError for a model with a layer the exporter does not know.
 */
export async function exportBundle(bundle: ModelBundle): Promise<OnnxExport> {
  await initRuntime();
  const model = await loadModel(bundle);
  try {
    return exportOnnx(model);
  } finally {
    model.dispose();
  }
}
