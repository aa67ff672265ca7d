import { activationLayer } from './activation-layer';
import { batchNormalization } from './batch-normalization';
import { conv2d } from './conv2d';
import { dense } from './dense';
import { dropout, noiseLayers } from './dropout';
import { flatten } from './flatten';
import { globalAveragePooling2d, globalMaxPooling2d } from './global-pooling';
import { averagePooling2d, maxPooling2d } from './pooling';
import type { LayerModule } from './types';

/**
 * Every layer type the ONNX graphs know, one module each; export.ts, training-graph.ts and
 * grad-cam-graph.ts walk the model and ask here. Adding a layer type is one module and one line.
 *
 * What each can do (a missing function in its module says it cannot):
 *   layer                                   export  train in onnxruntime      Grad-CAM backward
 *   Conv2D                                  yes     stride 1, undilated        no (not in the head)
 *   Dense                                   yes     yes                        yes
 *   BatchNormalization                      yes     with scale and centre      yes
 *   Activation, ReLU                        yes     linear/relu/sigmoid/tanh   same; no ReLU maximum
 *   MaxPooling2D                            yes     yes                        yes
 *   AveragePooling2D                        yes     no                         no
 *   GlobalAveragePooling2D                  yes     yes                        yes
 *   GlobalMaxPooling2D                      yes     no                         no
 *   Flatten                                 yes     yes                        yes
 *   Dropout                                 yes     on flat features           yes (identity)
 *   SpatialDropout2D, GaussianDropout/Noise yes     no                         yes (identity)
 * A model the training graph cannot take trains with TF.js (about 5.6x slower) and its card says why.
 */
export const LAYER_MODULES: readonly LayerModule[] = [
  conv2d,
  dense,
  batchNormalization,
  activationLayer,
  maxPooling2d,
  averagePooling2d,
  globalAveragePooling2d,
  globalMaxPooling2d,
  flatten,
  dropout,
  noiseLayers,
];

const BY_CLASS = new Map(LAYER_MODULES.flatMap((m) => m.classNames.map((c) => [c, m] as const)));

/** The module for a TF.js layer class, or undefined for one no ONNX graph knows. */
export function layerModule(className: string): LayerModule | undefined {
  return BY_CLASS.get(className);
}
