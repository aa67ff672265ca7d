import * as tf from '@tensorflow/tfjs';
import { gradCam, renderHeatmapPng } from './heatmap';
import type { RgbImage } from './image/decode';
import { toModelInput } from './image/preprocess';
import { measureMorphology, type Morphology } from './morphology';

/** What serving needs to know about a model besides its weights (from the model card). */
export interface DecisionRule {
  inputSize: number;
  threshold: number;
  reviewLow: number;
  reviewHigh: number;
}

export interface CellAnalysis {
  probabilityAll: number;
  isAll: boolean;
  needsReview: boolean;
  morphology: Morphology;
  /** PNG of the Grad-CAM heat map over the cell; null when not asked for or the net has no conv layer. */
  heatmapPng: Buffer | null;
  timings: { resizeMs: number; predictMs: number; morphologyMs: number; heatmapMs: number };
}

const hasLayer = (model: tf.LayersModel, name: string) => model.layers.some((l) => l.name === name);

/**
 * One pass over one cell: resize, predict (with Grad-CAM when asked: the same forward pass gives both),
 * measure the outline and texture, render the heat map. Every tensor is released before returning.
 */
export async function analyzeCell(
  model: tf.LayersModel,
  rule: DecisionRule,
  image: RgbImage,
  options: { explain: boolean },
): Promise<CellAnalysis> {
  let t = performance.now();
  const pixels = await toModelInput(image, rule.inputSize);
  const resizeMs = performance.now() - t;

  t = performance.now();
  const input = tf.tensor4d(pixels, [1, rule.inputSize, rule.inputSize, 3]);
  let probabilityAll: number;
  let heatmap: Float32Array | null = null;
  try {
    if (options.explain && hasLayer(model, 'last_conv')) {
      const cam = gradCam(model, input);
      probabilityAll = cam.probabilityAll;
      heatmap = cam.heatmap;
    } else {
      const output = tf.tidy(() => model.predict(input) as tf.Tensor);
      probabilityAll = (await output.data())[0];
      output.dispose();
    }
  } finally {
    input.dispose();
  }
  const predictMs = performance.now() - t;

  t = performance.now();
  const morphology = measureMorphology(image);
  const morphologyMs = performance.now() - t;

  t = performance.now();
  const heatmapPng = heatmap ? await renderHeatmapPng(image, heatmap, rule.inputSize) : null;
  const heatmapMs = performance.now() - t;

  return {
    probabilityAll,
    isAll: probabilityAll >= rule.threshold,
    needsReview: probabilityAll >= rule.reviewLow && probabilityAll < rule.reviewHigh,
    morphology,
    heatmapPng,
    timings: { resizeMs, predictMs, morphologyMs, heatmapMs },
  };
}
