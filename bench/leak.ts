import type { RgbImage } from '../src/ml/image/types';
import type { OnnxClassifier } from '../src/ml/onnx/session';
import { analyzeCell, type DecisionRule } from '../src/ml/serving/predictor';
import { liveTensors } from '../src/ml/runtime';
import { round } from './stats';
import type { TfjsNetwork } from '../src/ml/serving/tfjs-network';

export interface GrowthRow {
  runtime: string;
  predictions: number;
  tensorsBefore: number;
  tensorsAfter: number;
  tensorGrowth: number;
  rssGrowthMb: number;
}

/**
 * Live TF.js tensors and resident memory before and after `count` predictions with heat maps through
 * analyzeCell, cycling over real decoded cells.
 */
export async function benchGrowth(
  network: TfjsNetwork,
  rule: DecisionRule,
  images: RgbImage[],
  onnx: OnnxClassifier | null,
  count: number,
): Promise<GrowthRow> {
  // A few rounds first, so lazily created state (kernels, pools) is not counted as growth.
  for (let i = 0; i < 5; i++)
    await analyzeCell(network, rule, images[i % images.length], { explain: true, onnx });
  const tensorsBefore = liveTensors();
  const rssBefore = process.memoryUsage().rss;
  let runtime = '';
  for (let i = 0; i < count; i++) {
    const analysis = await analyzeCell(network, rule, images[i % images.length], { explain: true, onnx });
    runtime = analysis.runtime;
  }
  const tensorsAfter = liveTensors();
  return {
    runtime,
    predictions: count,
    tensorsBefore,
    tensorsAfter,
    tensorGrowth: tensorsAfter - tensorsBefore,
    rssGrowthMb: round((process.memoryUsage().rss - rssBefore) / 2 ** 20),
  };
}
