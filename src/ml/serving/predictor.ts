import { renderHeatmapPng } from '../explanation/heatmap';
import type { RgbImage } from '../image/decode';
import { fuse, isMorphologyStack, type MorphologyStack } from '../features/fusion';
import { findForeground } from '../image/foreground';
import { otherDihedralViews, toModelInput } from '../image/preprocess';
import { measureMorphology, type Morphology } from '../features/morphology';
import type { OnnxClassifier } from '../onnx/session';
import { reviewReasons, type ReviewReason } from './decision';
import { domainFeatures, domainScore, type DomainModel } from '../features/out-of-domain';
import { applyCalibration, type PlattCalibration } from '../decisions/calibration';
import type { NetworkPasses } from './network-passes';
import type { TfjsNetwork } from './tfjs-network';
import type { LayersModel } from '@tensorflow/tfjs';

/** What serving needs to know about a model besides its weights (from the model card). */
export interface DecisionRule {
  inputSize: number;
  threshold: number;
  reviewLow: number;
  reviewHigh: number;
  /** Average the network over the cell's 8 flips and quarter turns (a card without it: off). */
  testTimeAugmentation?: boolean;
  /** Fuse the network's probability with the measured morphology (a card without it: the network alone). */
  fusion?: MorphologyStack | null;
  /**
   * The training images' domain and the score above which an image is OUT_OF_DOMAIN (fitted out of
   * fold). A card without it: no score, no OUT_OF_DOMAIN reason, nothing else changes.
   */
  outOfDomain?: (DomainModel & { threshold: number }) | null;
  /**
   * Platt scaling fitted on out-of-fold scores (src/ml/decisions), applied last, so threshold and band are
   * on the calibrated probability (a card without it: the uncalibrated probability, as before).
   */
  calibration?: PlattCalibration | null;
}

export interface CellAnalysis {
  /**
   * What the decision is made on: the network's probability, fused with morphology when the rule says so,
   * calibrated when the rule carries a calibration.
   */
  probabilityAll: number;
  /** The network's own probability (over 8 views with test-time augmentation), before any fusion. */
  networkProbability: number;
  isAll: boolean;
  /** True exactly when reviewReasons is not empty. */
  needsReview: boolean;
  reviewReasons: ReviewReason[];
  /**
   * How far the image lies from the training data (larger is further); null when the model card
   * carries no out-of-domain model.
   */
  outOfDomainScore: number | null;
  morphology: Morphology;
  /** PNG of the Grad-CAM heat map over the cell; null when not asked for or the net has no conv layer. */
  heatmapPng: Buffer | null;
  /**
   * Milliseconds on this thread's path: work overlapped on another thread counts only for what is left
   * of it when this thread needs its result.
   */
  timings: {
    /** The wait for the resize (libvips) after the cell and its out-of-domain statistics were measured. */
    resizeMs: number;
    /** The forward passes: the cell as given (with Grad-CAM when explained), then its other 7 views. */
    predictMs: number;
    morphologyMs: number;
    /** Drawing the overlay, and the wait for its PNG's deflate (zlib) after the other views were scored. */
    heatmapMs: number;
    /** 0 when the rule carries no out-of-domain model. */
    outOfDomainMs: number;
  };
  /** What ran the network (and Grad-CAM): onnxruntime when the version has an ONNX twin that loaded. */
  runtime: 'onnxruntime' | 'tfjs';
}

/**
 * One pass over one cell: resize, predict (with Grad-CAM when asked: the same forward pass gives both),
 * measure the outline and texture, render the heat map. Every tensor is released before returning.
 *
 * With `options.onnx` (the same network exported by src/ml/onnx) the forward pass, and Grad-CAM when its
 * graph has it, run in onnxruntime; the TF.js model only explains for an export without Grad-CAM. TF.js
 * and the network's TF.js model are loaded only when they run (tfjs-network.ts, tfjs-predict.ts).
 *
 * The work is ordered so that both cores are busy: the resize (libvips, on libuv's thread pool) runs
 * while this thread measures the cell and its out-of-domain statistics, and the heat map's PNG deflate
 * (zlib, on the same pool) runs while the network scores the other 7 views of test-time augmentation. Each
 * part reads only the decoded image or its own inputs, so the result is the one a sequential pass
 * gives (test/ml/serving/predictor-overlap.test.ts).
 */
export async function analyzeCell(
  network: TfjsNetwork,
  rule: DecisionRule,
  image: RgbImage,
  options: { explain: boolean; onnx?: OnnxClassifier | null },
): Promise<CellAnalysis> {
  // A damaged card is refused before any work starts. A card is written by our own training; a stack
  // that does not parse means a damaged card, not a reason to answer with the network alone as if
  // nothing were wrong.
  if (rule.fusion && !isMorphologyStack(rule.fusion))
    throw new Error('The model card holds a malformed morphology stack.');
  const domain = rule.outOfDomain;
  if (domain && !Number.isFinite(domain.threshold))
    throw new Error('The model card holds an out-of-domain model without a finite threshold.');

  const resizing = toModelInput(image, rule.inputSize);
  // Not awaited until the cell is measured: a rejection must not go unhandled meanwhile.
  resizing.catch(() => undefined);

  // One segmentation for the morphology and the out-of-domain statistics (src/ml/image/foreground.ts).
  let t = performance.now();
  const foreground = findForeground(image);
  const morphology = measureMorphology(image, foreground);
  const morphologyMs = performance.now() - t;

  t = performance.now();
  // Scored on the image as given: another lab's grey background or magnification is exactly what
  // must be seen, so never on the blackened or resized copy the network gets.
  const outOfDomainScore = domain ? domainScore(domain, domainFeatures(image, foreground)) : null;
  const outOfDomainMs = domain ? performance.now() - t : 0;

  t = performance.now();
  const pixels = await resizing;
  const resizeMs = performance.now() - t;

  t = performance.now();
  const explain = options.explain && network.explainable;
  const onnx = options.onnx;
  const useOnnx = onnx != null && (!explain || onnx.explains);
  // TF.js, and the network's TF.js model, are loaded only where onnxruntime does not run the passes.
  const passes = useOnnx ? onnxPasses(onnx) : tfjsPasses(await network.model());
  const first = await passes.first(pixels, rule.inputSize, explain);
  let probabilityAll = first.probabilityAll;
  const heatmap = first.heatmap;
  let predictMs = performance.now() - t;

  // The overlay is drawn now and its PNG deflated by zlib on libuv's thread pool while the network
  // scores the other views: the two overlap wherever there is a second core.
  t = performance.now();
  const heatmapPng = heatmap ? renderHeatmapPng(image, heatmap, rule.inputSize, foreground.brightest) : null;
  // Not awaited until the end: a rejection must not go unhandled meanwhile.
  heatmapPng?.catch(() => undefined);
  let heatmapMs = performance.now() - t;

  t = performance.now();
  if (rule.testTimeAugmentation) {
    // The heat map stays that of the cell as given; the probability is the mean over all 8 views.
    const others = otherDihedralViews(pixels, rule.inputSize);
    const count = others.length / pixels.length;
    const rest = await passes.rest(others, count, rule.inputSize);
    probabilityAll = (probabilityAll + rest.reduce((a, b) => a + b, 0)) / (count + 1);
  }
  predictMs += performance.now() - t;

  const networkProbability = probabilityAll;
  if (rule.fusion) probabilityAll = fuse(rule.fusion, networkProbability, morphology);
  probabilityAll = applyCalibration(rule.calibration, probabilityAll);

  t = performance.now();
  const png = heatmapPng ? await heatmapPng : null;
  heatmapMs += performance.now() - t;
  const outOfDomain = domain != null && outOfDomainScore !== null && outOfDomainScore > domain.threshold;
  const reasons = reviewReasons(rule, probabilityAll, outOfDomain);
  return {
    probabilityAll,
    networkProbability,
    isAll: probabilityAll >= rule.threshold,
    needsReview: reasons.length > 0,
    reviewReasons: reasons,
    outOfDomainScore,
    morphology,
    heatmapPng: png,
    timings: { resizeMs, predictMs, morphologyMs, heatmapMs, outOfDomainMs },
    runtime: useOnnx ? 'onnxruntime' : 'tfjs',
  };
}

/**
 * The cell as given goes through the graph with Grad-CAM whenever the model has one, heat map asked for or
 * not, and the other views through the graph without it (session.ts): the two graphs' probabilities can
 * differ in their last bits, and a cell's probability must not depend on whether its heat map was asked for.
 */
function onnxPasses(onnx: OnnxClassifier): NetworkPasses {
  return {
    first: async (pixels, _inputSize, explain) => {
      if (!onnx.explains) return { probabilityAll: (await onnx.predict(pixels, 1))[0], heatmap: null };
      const explained = await onnx.explain(pixels);
      return explain ? explained : { probabilityAll: explained.probabilityAll, heatmap: null };
    },
    rest: (flat, count) => onnx.predict(flat, count),
  };
}

/** Required here rather than imported above (see tfjs-network.ts): only this path loads TF.js. */
function tfjsPasses(model: LayersModel): NetworkPasses {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('./tfjs-predict') as typeof import('./tfjs-predict')).tfjsPasses(model);
}
