/**
 * Names of the exported graph's tensors, which serving asks for. Apart from the exporter, so that serving
 * (the API) does not load the ONNX writer and its protobuf (src/services/model-artifacts.ts).
 */
export const ONNX_INPUT = 'image';
export const ONNX_PROBABILITY = 'probability_all';
/** Grad-CAM for the ALL class before normalisation: [N, 1, inputSize, inputSize], >= 0. */
export const ONNX_GRAD_CAM = 'grad_cam';
