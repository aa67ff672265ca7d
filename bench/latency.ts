import type * as tf from '@tensorflow/tfjs';
import { decodeImage } from '../src/ml/image/decode';
import type { OnnxClassifier } from '../src/ml/onnx/session';
import { analyzeCell, type DecisionRule } from '../src/ml/predictor';
import { percentile, round } from './stats';

export const STAGES = ['decode', 'resize', 'predict', 'heatmap', 'morphology', 'total'] as const;
export type Stage = (typeof STAGES)[number];
export type StageLatency = Record<Stage, { p50: number; p99: number }>;

/**
 * Single-image latency by stage over real C-NMC cells (450x450 BMP bytes), the way PredictionService
 * runs them: decode, then analyzeCell with a heat map (resize, predict + Grad-CAM, morphology, heat-map
 * PNG). `predict` includes Grad-CAM; `heatmap` is rendering the PNG.
 */
export async function benchLatency(
  model: tf.LayersModel,
  rule: DecisionRule,
  images: Buffer[],
  onnx: OnnxClassifier | null,
  passes: number,
): Promise<{ runtime: string; samples: number; stages: StageLatency }> {
  const times: Record<Stage, number[]> = Object.fromEntries(STAGES.map((s) => [s, []])) as never;
  let runtime = '';
  // One untimed pass over a cell: first-call costs belong to cold start, measured separately.
  await analyzeCell(model, rule, await decodeImage(images[0]), { explain: true, onnx });
  for (let pass = 0; pass < passes; pass++) {
    for (const bytes of images) {
      const start = performance.now();
      const image = await decodeImage(bytes);
      const decodeMs = performance.now() - start;
      const analysis = await analyzeCell(model, rule, image, { explain: true, onnx });
      runtime = analysis.runtime;
      const { resizeMs, predictMs, heatmapMs, morphologyMs } = analysis.timings;
      times.decode.push(decodeMs);
      times.resize.push(resizeMs);
      times.predict.push(predictMs);
      times.heatmap.push(heatmapMs);
      times.morphology.push(morphologyMs);
      times.total.push(performance.now() - start);
    }
  }
  const stages = Object.fromEntries(
    STAGES.map((s) => [s, { p50: round(percentile(times[s], 50)), p99: round(percentile(times[s], 99)) }]),
  ) as StageLatency;
  return { runtime, samples: times.total.length, stages };
}
