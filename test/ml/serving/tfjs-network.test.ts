import * as tf from '@tensorflow/tfjs';
import { ARCHITECTURES, LAST_CONV_LAYER } from '../../../src/ml/models/architecture-names';
import { buildModel, SEED_MIN_INPUT_SIZE } from '../../../src/ml/models/architectures';
import { serializeModel } from '../../../src/ml/models/model-io';
import { initRuntime, liveTensors } from '../../../src/ml/runtime';
import { builtNetwork, lazyNetwork } from '../../../src/ml/serving/tfjs-network';

/**
 * A served version's TF.js network is read from its files without TF.js (is there a Grad-CAM layer? are
 * the weights whole?) and built only when asked: what lets an instance served by onnxruntime skip TF.js.
 */
const SIZE = Math.max(SEED_MIN_INPUT_SIZE, 48);

beforeAll(() => initRuntime());

describe('lazyNetwork', () => {
  it.each(ARCHITECTURES)(
    'finds in the topology of %s the Grad-CAM layer its built model has',
    async (arch) => {
      const model = buildModel(arch, SIZE, 1);
      const bundle = await serializeModel(model);
      const network = lazyNetwork(bundle);
      expect(network.explainable).toBe(model.layers.some((layer) => layer.name === LAST_CONV_LAYER));
      expect(network.explainable).toBe(builtNetwork(model).explainable);
      // Every CNN has the layer; the majority baseline has no convolution to explain.
      expect(network.explainable).toBe(arch !== 'majority');
      // The same topology as a Keras conversion stores it, wrapped in model_config.
      const wrapped = {
        ...bundle.modelJson,
        modelTopology: { model_config: bundle.modelJson.modelTopology },
      };
      expect(lazyNetwork({ ...bundle, modelJson: wrapped }).explainable).toBe(network.explainable);
      model.dispose();
    },
  );

  it('builds on first use, once, the model its files describe', async () => {
    const original = buildModel('lymphonet', SIZE, 7);
    const bundle = await serializeModel(original);
    const before = liveTensors();
    const network = lazyNetwork(bundle);
    expect(liveTensors()).toBe(before);
    const [built, again] = await Promise.all([network.model(), network.model()]);
    expect(again).toBe(built);
    expect(liveTensors()).toBe(before + built.weights.length);
    const input = tf.randomUniform([2, SIZE, SIZE, 3], 0, 1, 'float32', 3);
    const [expected, actual] = [original, built].map((m) =>
      tf.tidy(() => (m.predict(input) as tf.Tensor).dataSync()),
    );
    expect(Array.from(actual)).toEqual(Array.from(expected));
    tf.dispose(input);
    network.dispose();
    original.dispose();
    // Disposal waits for the build, which is done.
    await new Promise((resolve) => setImmediate(resolve));
    expect(liveTensors()).toBe(before - original.weights.length);
  });

  it('refuses a version with damaged weights when it is loaded, before anything is built', async () => {
    const model = buildModel('vanilla', SIZE, 1);
    const bundle = await serializeModel(model);
    model.dispose();
    const truncated = { ...bundle, weights: bundle.weights.subarray(0, bundle.weights.length - 4) };
    expect(() => lazyNetwork(truncated)).toThrow(/weights.bin has \d+ bytes; model.json describes \d+/);
    const { modelTopology: _, ...noTopology } = bundle.modelJson;
    expect(() => lazyNetwork({ ...bundle, modelJson: noTopology })).toThrow(/not a TF.js layers model/);
  });
});
