import type * as tf from '@tensorflow/tfjs';
import { LAST_CONV_LAYER } from '../models/architecture-names';
import { checkedWeightSpecs, topologyLayerNames, type ModelBundle } from '../models/model-bundle';

/**
 * A served network's TF.js model, built when something first needs it. onnxruntime serves every version
 * with an ONNX twin (its predictions, and its Grad-CAM when the twin has one), and then nothing does:
 * such a process never loads TensorFlow.js. On a packaged cold start that is most of the require of the
 * TF.js packages and the build of the model (docs/PERFORMANCE.md, "Packaged cold start, fourth pass").
 */
export interface TfjsNetwork {
  /** Whether it has the conv layer Grad-CAM explains (LAST_CONV_LAYER). */
  readonly explainable: boolean;
  /** The TF.js model. The first call of a lazy network initialises the runtime and builds it. */
  model(): Promise<tf.LayersModel>;
  /** Releases its weights if it was ever built. */
  dispose(): void;
}

/** A network whose model is already built (training, the CLI, tests). */
export function builtNetwork(model: tf.LayersModel): TfjsNetwork {
  return {
    explainable: model.layers.some((layer) => layer.name === LAST_CONV_LAYER),
    model: async () => model,
    dispose: () => model.dispose(),
  };
}

/**
 * A network built from its stored files on first use. The files are checked now (checkedWeightSpecs), so
 * a damaged version fails when it is loaded, whether or not TF.js ever runs it. A failed build is not
 * kept: the next call tries again.
 */
export function lazyNetwork(bundle: ModelBundle): TfjsNetwork {
  checkedWeightSpecs(bundle);
  let building: Promise<tf.LayersModel> | undefined;
  return {
    explainable: topologyLayerNames(bundle.modelJson).includes(LAST_CONV_LAYER),
    model() {
      building ??= build(bundle).catch((error: unknown) => {
        building = undefined;
        throw error;
      });
      return building;
    },
    dispose() {
      building?.then(
        (model) => model.dispose(),
        () => undefined,
      );
    },
  };
}

async function build(bundle: ModelBundle): Promise<tf.LayersModel> {
  // Required here rather than imported above: a process that never builds a TF.js model never loads TF.js.
  // Not import(): the CLI runs under tsx's CommonJS hook, which leaves import() to Node's ES loader.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { initRuntime } = require('../runtime') as typeof import('../runtime');
  const { loadModel } = require('../models/model-io') as typeof import('../models/model-io');
  /* eslint-enable @typescript-eslint/no-require-imports */
  await initRuntime();
  return loadModel(bundle);
}
