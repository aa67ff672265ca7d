/**
 * The network's forward passes over one cell, in onnxruntime (predictor.ts) or TF.js (tfjs-predict.ts),
 * which predictor.ts loads only when it runs them.
 */
export interface NetworkPasses {
  /** The cell as given, with its Grad-CAM heat map (inputSize x inputSize) when `explain`. */
  first(
    pixels: Float32Array,
    inputSize: number,
    explain: boolean,
  ): Promise<{ probabilityAll: number; heatmap: Float32Array | null }>;
  /** `count` other views of it, one after another in `flat`: their probabilities. */
  rest(flat: Float32Array, count: number, inputSize: number): Promise<Float32Array>;
}
