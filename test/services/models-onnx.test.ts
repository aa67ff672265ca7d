import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeImage } from '../../src/ml/image/decode';
import { serializeModel } from '../../src/ml/models/model-io';
import type { ModelBundle } from '../../src/ml/models/model-bundle';
import { analyzeCell } from '../../src/ml/serving/predictor';
import { initRuntime, liveTensors } from '../../src/ml/runtime';
import { ModelRegistry, type NewModelCard } from '../../src/services/models';
import { registryOver } from '../helpers/model-registry';
import { startTestS3, type TestS3 } from '../helpers/s3';
import { sampleImages } from '../helpers/sample';

/**
 * Registration stores an ONNX twin of each model beside model.json, and serving runs it in onnxruntime,
 * with the same answers as TF.js; a model the exporter cannot translate is still registered and served.
 */
const DEMO_DIR = path.join(__dirname, '..', '..', 'data', 'demo-model');

function demo(): { bundle: ModelBundle; card: NewModelCard } {
  const bundle = {
    modelJson: JSON.parse(readFileSync(path.join(DEMO_DIR, 'model.json'), 'utf8')),
    weights: readFileSync(path.join(DEMO_DIR, 'weights.bin')),
  };
  const {
    version: _v,
    createdAt: _c,
    charts: _charts,
    ...card
  } = JSON.parse(readFileSync(path.join(DEMO_DIR, 'card.json'), 'utf8'));
  return { bundle, card: card as NewModelCard };
}

describe('ModelRegistry with ONNX serving', () => {
  let s3: TestS3;
  let registry: ModelRegistry;

  beforeAll(async () => {
    await initRuntime();
    s3 = await startTestS3();
    registry = registryOver(s3.store);
  });
  afterAll(() => s3?.stop());

  it('stores model.onnx at registration and serves predictions and heat maps from it', async () => {
    const { bundle, card } = demo();
    const registered = await registry.register(bundle, card);
    expect(await s3.listKeys()).toContain(`models/${registered.version}/model.onnx`);

    const before = liveTensors();
    const loaded = await registry.load(registered.version);
    expect(loaded.onnx).not.toBeNull();
    expect(loaded.onnx!.explains).toBe(true);
    expect(loaded.network.explainable).toBe(true);
    // onnxruntime runs all of it: no TF.js model is built, so none of its weights are held...
    const onOnnx = await analyzeCell(
      loaded.network,
      loaded.card,
      await decodeImage(sampleImages()[0].bytes),
      {
        explain: true,
        onnx: loaded.onnx,
      },
    );
    expect(onOnnx.heatmapPng).not.toBeNull();
    expect(liveTensors()).toBe(before);
    // ...until TF.js is asked to run it, once.
    const weights = (await loaded.network.model()).weights.length;
    expect(weights).toBeGreaterThan(0);
    expect(liveTensors()).toBe(before + weights);
    for (const sample of sampleImages().filter((_, i) => i % 16 === 0)) {
      const image = await decodeImage(sample.bytes);
      const served = await analyzeCell(loaded.network, loaded.card, image, {
        explain: true,
        onnx: loaded.onnx,
      });
      const reference = await analyzeCell(loaded.network, loaded.card, image, { explain: true });
      expect(served.runtime).toBe('onnxruntime');
      expect(reference.runtime).toBe('tfjs');
      expect(Math.abs(served.probabilityAll - reference.probabilityAll)).toBeLessThan(1e-4);
      expect(served.isAll).toBe(reference.isAll);
      expect(served.heatmapPng).not.toBeNull();
      const quick = await analyzeCell(loaded.network, loaded.card, image, {
        explain: false,
        onnx: loaded.onnx,
      });
      expect(quick.heatmapPng).toBeNull();
      expect(quick.probabilityAll).toBeCloseTo(served.probabilityAll, 6);
    }
  });

  it('registers and serves with TF.js a model the exporter cannot translate', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.upSampling2d({ inputShape: [32, 32, 3], size: [2, 2] }),
        tf.layers.globalAveragePooling2d({}),
        tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'probability_all' }),
      ],
    });
    const bundle = await serializeModel(model);
    model.dispose();
    const registered = await registry.register(bundle, { ...demo().card, inputSize: 32 });
    expect(await s3.listKeys()).not.toContain(`models/${registered.version}/model.onnx`);
    const before = liveTensors();
    const loaded = await registry.load(registered.version);
    expect(loaded.onnx).toBeNull();
    // Without a twin the TF.js model is built at load, so a version it cannot build fails there.
    expect(liveTensors()).toBeGreaterThan(before);
    const image = await decodeImage(sampleImages()[0].bytes);
    const served = await analyzeCell(loaded.network, loaded.card, image, {
      explain: true,
      onnx: loaded.onnx,
    });
    expect(served.runtime).toBe('tfjs');
    expect(served.probabilityAll).toBeGreaterThan(0);
  });
  it('reads a version for serving at once, and still answers a missing version or missing weights by name', async () => {
    const registered = await registry.register(demo().bundle, demo().card);
    const reads: string[] = [];
    const counting = new Proxy(s3.store, {
      get(target, name, receiver) {
        if (name !== 'get') return Reflect.get(target, name, receiver);
        return async (key: string) => {
          const file = key.split('/').pop();
          reads.push(`start ${file}`);
          try {
            return await target.get(key);
          } finally {
            reads.push(`end ${file}`);
          }
        };
      },
    });
    const fresh = registryOver(counting);
    const loaded = await fresh.load(registered.version);
    expect(loaded.onnx).not.toBeNull();
    // The card, model.json, weights.bin and model.onnx, each read once, all started before any answered.
    expect(reads.slice(0, 4).sort()).toEqual([
      'start card.json',
      'start model.json',
      'start model.onnx',
      'start weights.bin',
    ]);
    expect(reads).toHaveLength(8);
    await expect(fresh.load('v99999')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(fresh.load('v99999')).rejects.toThrow(/Model version/);
    await s3.store.delete(`models/${registered.version}/weights.bin`);
    const again = registryOver(counting);
    await expect(again.load(registered.version)).rejects.toThrow(/Model artifacts of version/);
  });
});
