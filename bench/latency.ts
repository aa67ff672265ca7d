import { decodeImage } from '../src/ml/image/decode';
import type { OnnxClassifier } from '../src/ml/onnx/session';
import { analyzeCell, type DecisionRule } from '../src/ml/serving/predictor';
import { percentile, round } from './stats';
import type { TfjsNetwork } from '../src/ml/serving/tfjs-network';

export const STAGES = [
  'decode',
  'resize',
  'predict',
  'heatmap',
  'morphology',
  'outOfDomain',
  'total',
] as const;
export type Stage = (typeof STAGES)[number];
export type StageLatency = Record<Stage, { p50: number; p99: number }>;
export interface LatencyRow {
  runtime: string;
  samples: number;
  stages: StageLatency;
}

/**
 * Single-image latency by stage over real C-NMC cells, the way PredictionService runs them: decode, then
 * analyzeCell with a heat map (resize, predict + Grad-CAM, heat-map PNG, morphology, out-of-domain score).
 * `predict` includes Grad-CAM; `heatmap` is drawing the overlay plus whatever of its PNG encode (on the
 * thread pool, overlapped with the other 7 views' forward passes) is left after them, and `resize` what
 * of the resize (thread pool too) is left after morphology and out-of-domain: the stages are this
 * thread's path, and `total` the wall clock. Each cell goes through every runtime in turn, so load from
 * other processes on a shared machine falls on all of them alike.
 */
export async function benchLatency(
  network: TfjsNetwork,
  rule: DecisionRule,
  images: Buffer[],
  runtimes: Array<OnnxClassifier | null>,
  passes: number,
): Promise<LatencyRow[]> {
  const empty = () => Object.fromEntries(STAGES.map((s) => [s, [] as number[]])) as Record<Stage, number[]>;
  const times = runtimes.map(empty);
  const names = runtimes.map(() => '');
  // One untimed pass over a cell: first-call costs belong to cold start, measured separately.
  for (const onnx of runtimes)
    await analyzeCell(network, rule, await decodeImage(images[0]), { explain: true, onnx });
  for (let pass = 0; pass < passes; pass++) {
    for (const bytes of images) {
      for (const [r, onnx] of runtimes.entries()) {
        const start = performance.now();
        const image = await decodeImage(bytes);
        const decodeMs = performance.now() - start;
        const analysis = await analyzeCell(network, rule, image, { explain: true, onnx });
        names[r] = analysis.runtime;
        const { resizeMs, predictMs, heatmapMs, morphologyMs, outOfDomainMs } = analysis.timings;
        const t = times[r];
        t.decode.push(decodeMs);
        t.resize.push(resizeMs);
        t.predict.push(predictMs);
        t.heatmap.push(heatmapMs);
        t.morphology.push(morphologyMs);
        t.outOfDomain.push(outOfDomainMs);
        t.total.push(performance.now() - start);
      }
    }
  }
  return times.map((t, r) => ({
    runtime: names[r],
    samples: t.total.length,
    stages: Object.fromEntries(
      STAGES.map((s) => [s, { p50: round(percentile(t[s], 50)), p99: round(percentile(t[s], 99)) }]),
    ) as StageLatency,
  }));
}
