import type { ChartName } from '../charts/chart-names';
import { renderModelCharts, type ChartSource } from '../charts/model-charts';
import type { ModelBundle } from '../ml/models/model-bundle';
import { exportBundle, type OnnxExport } from '../ml/onnx';

/**
 * What registering a model version makes besides its weights: the SVG charts (vega) and the ONNX twin
 * (the ONNX writer and its protobuf). Only processes that register models are given it (the training
 * worker, the CLI, the local stack): createServices' `registration`. The API only links to charts and
 * reads the stored twin, so its Lambda bundle leaves both libraries out: 1.0 MB of its 4.3, about 90 ms
 * of every cold start (docs/PERFORMANCE.md, "Packaged cold start, third pass").
 */
export interface ModelArtifacts {
  renderCharts(card: ChartSource): Promise<Map<ChartName, string>>;
  exportOnnx(bundle: ModelBundle): Promise<OnnxExport>;
}

export const modelArtifacts: ModelArtifacts = {
  renderCharts: renderModelCharts,
  exportOnnx: exportBundle,
};
