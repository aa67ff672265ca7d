/**
 * How a model version turns an image into its answer, in words, written into every model card
 * (card.preprocessing) so a reader can reproduce the API's probabilities without our code. The code
 * it describes: toModelInput in image/preprocess.ts, the recipe in predictor.ts, calibration in
 * decisions/. Change them together.
 *
 * Exact enough to reproduce the API's probabilities to 1e-4 (test/e2e/models.test.ts does, with its own
 * BMP reader and sharp): the resampling filter matters, a bilinear resize does not get there.
 */
export const PREPROCESSING =
  'Decode to 8-bit RGB; if the background is not black (the per-channel median of the outermost pixels is above 8 ' +
  'in some channel), set every pixel outside the segmented cell to black (blackenBackground in src/ml/features/morphology.ts; ' +
  'C-NMC images are left as they are); resize the whole image to inputSize x inputSize with a Lanczos-3 filter, stretching ' +
  '(no crop, no padding; sharp: resize(inputSize, inputSize, { fit: "fill", kernel: "lanczos3" })); divide by 255 ' +
  'to get float32 in [0, 1]; shape [1, inputSize, inputSize, 3] (NHWC, RGB order). The single output is the ' +
  "network's probability of ALL. A version with testTimeAugmentation averages it over the 8 flips and quarter " +
  "turns of the input (the API's networkProbability); a version whose fusion is not NONE then combines it with " +
  "the cell's measured morphology and chromatin texture (card.fusion, docs/ML.md) into probabilityAll. Call ALL at " +
  'or above the ' +
  "version's threshold, and ask for a human review inside [reviewLow, reviewHigh), both on probabilityAll. A version " +
  'with a calibration (Platt scaling fitted on out-of-fold scores) applies it last: probabilityAll = ' +
  '1 / (1 + exp(-(slope * logit(p) + intercept))), with p clamped to [1e-6, 1 - 1e-6].';
