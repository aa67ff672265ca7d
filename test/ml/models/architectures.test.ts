import * as tf from '@tensorflow/tfjs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildModel, estimateFlops, SEED_MIN_INPUT_SIZE } from '../../../src/ml/models/architectures';
import {
  ARCHITECTURES,
  type Architecture,
  DEFAULT_ARCHITECTURE,
  LAST_CONV_LAYER,
} from '../../../src/ml/models/architecture-names';
import { ErrorCode } from '../../../src/errors';
import { loadModel, serializeModel } from '../../../src/ml/models/model-io';
import { WEIGHTS_FILE } from '../../../src/ml/models/model-bundle';
import { Rng } from '../../../src/ml/rng';
import { initRuntime, liveTensors } from '../../../src/ml/runtime';

/** The seed net's unpadded convolutions need a larger input than the others. */
const sizeFor = (arch: Architecture) => (arch === 'seed-2x2x1x1' ? SEED_MIN_INPUT_SIZE : 32);

function images(n: number, size: number, seed: number): tf.Tensor4D {
  const rng = new Rng(seed);
  return tf.tensor4d(
    Float32Array.from({ length: n * size * size * 3 }, () => rng.next()),
    [n, size, size, 3],
  );
}

function predict(model: tf.LayersModel, x: tf.Tensor): Float32Array {
  return tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

beforeAll(async () => {
  await initRuntime();
});

test('the default is ours, and every architecture is listed once', () => {
  expect(DEFAULT_ARCHITECTURE).toBe('lymphonet');
  expect(new Set(ARCHITECTURES).size).toBe(4);
});

describe.each(ARCHITECTURES)('%s', (arch) => {
  const size = sizeFor(arch);

  test('outputs one probability of ALL per image, in [0, 1]', () => {
    const model = buildModel(arch, size, 7, { prior: 0.6 });
    const x = images(5, size, 1);
    const output = tf.tidy(() => model.predict(x) as tf.Tensor);
    expect(output.shape).toEqual([5, 1]);
    for (const p of output.dataSync()) {
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
    }
    tf.dispose([x, output]);
    model.dispose();
  });

  test('serialize -> load gives identical outputs, in the standard layers format', async () => {
    const model = buildModel(arch, size, 3, { prior: 0.3 });
    const x = images(3, size, 2);
    const bundle = await serializeModel(model);
    expect(bundle.modelJson.format).toBe('layers-model');
    const manifest = bundle.modelJson.weightsManifest as { paths: string[]; weights: unknown[] }[];
    expect(manifest).toHaveLength(1);
    expect(manifest[0].paths).toEqual([WEIGHTS_FILE]);
    const loaded = await loadModel(bundle);
    expect(Array.from(predict(loaded, x))).toEqual(Array.from(predict(model, x)));
    tf.dispose(x);
    model.dispose();
    loaded.dispose();
  });
});

test.each(ARCHITECTURES.filter((a) => a !== 'majority'))(
  '%s names its last convolution for Grad-CAM',
  (arch) => {
    const model = buildModel(arch, sizeFor(arch), 1);
    const layer = model.getLayer(LAST_CONV_LAYER);
    expect(layer.getClassName()).toBe('Conv2D');
    const convs = model.layers.filter((l) => l.getClassName() === 'Conv2D');
    expect(convs[convs.length - 1]).toBe(layer);
    model.dispose();
  },
);

test('initial weights depend on the seed and only on it', () => {
  const weights = (seed: number) => {
    const model = buildModel('lymphonet', 32, seed);
    const values = model.getWeights().map((w) => Array.from(w.dataSync()));
    model.dispose();
    return values;
  };
  const first = weights(11);
  expect(weights(11)).toEqual(first);
  expect(weights(12)).not.toEqual(first);
});

test('the majority baseline predicts the training prior for any image and has nothing to train', () => {
  const model = buildModel('majority', 32, 1, { prior: 0.57 });
  const x = images(4, 32, 3);
  for (const p of predict(model, x)) expect(p).toBeCloseTo(0.57, 5);
  expect(model.trainableWeights).toHaveLength(0);
  tf.dispose(x);
  model.dispose();
});

test('bad sizes are refused with an error the caller can act on', () => {
  expect(() => buildModel('lymphonet', 16, 1)).toThrow(
    expect.objectContaining({ code: ErrorCode.BAD_USER_INPUT }),
  );
  expect(() => buildModel('seed-2x2x1x1', SEED_MIN_INPUT_SIZE - 1, 1)).toThrow(/inputSize >= 52/);
  expect(() => buildModel('majority', 32, 1, { prior: 1 })).toThrow(/prior/);
});

test('estimateFlops counts convolutions and dense layers exactly, and lymphonet is far cheaper than the seed net', () => {
  const vanilla = buildModel('vanilla', 32, 1);
  // 3x3x3 -> 16 'valid' conv on 32x32 (30x30 out), then 2x2 pooling to 15x15x16 into one unit.
  expect(estimateFlops(vanilla)).toBe(2 * 30 * 30 * 27 * 16 + 2 * 15 * 15 * 16);
  vanilla.dispose();
  const ours = buildModel('lymphonet', 96, 1);
  const seed = buildModel('seed-2x2x1x1', 96, 1);
  expect(estimateFlops(ours) * 10).toBeLessThan(estimateFlops(seed));
  expect(ours.countParams() * 4).toBeLessThan(seed.countParams());
  ours.dispose();
  seed.dispose();
});

test('loading refuses weights that do not match the manifest', async () => {
  const model = buildModel('vanilla', 32, 1);
  const bundle = await serializeModel(model);
  model.dispose();
  await expect(
    loadModel({ ...bundle, weights: bundle.weights.subarray(0, bundle.weights.length - 4) }),
  ).rejects.toThrow(/weights.bin has \d+ bytes; model.json describes \d+/);
  await expect(loadModel({ modelJson: {}, weights: bundle.weights })).rejects.toThrow(
    /not a TF.js layers model/,
  );
});

describe('a stock tf.loadLayersModel over HTTP, as a browser does', () => {
  let server: Server;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  test('loads model.json + weights.bin and predicts the same', async () => {
    const model = buildModel('lymphonet', 32, 5);
    const bundle = await serializeModel(model);
    const files: Record<string, [string, Buffer]> = {
      '/models/v1/model.json': ['application/json', Buffer.from(JSON.stringify(bundle.modelJson))],
      [`/models/v1/${WEIGHTS_FILE}`]: ['application/octet-stream', bundle.weights],
    };
    server = createServer((req, res) => {
      const file = files[req.url ?? ''];
      res.writeHead(file ? 200 : 404, { 'content-type': file?.[0] ?? 'text/plain' });
      res.end(file?.[1] ?? 'not found');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    // Jest runs tests in their own realm while Node's fetch parses JSON in the outer one, whose arrays fail
    // tfjs-layers' instanceof checks; re-parsing the same bytes here keeps tf.io.http's browser path intact.
    const fetchFunc = (async (url: string, init?: RequestInit) => {
      const response = await fetch(url, init);
      const bytes = new Uint8Array(await response.arrayBuffer());
      return {
        ok: response.ok,
        status: response.status,
        json: async () => JSON.parse(new TextDecoder().decode(bytes)),
        arrayBuffer: async () => bytes.slice().buffer,
      };
    }) as unknown as typeof fetch;
    const before = liveTensors();
    const loaded = await tf.loadLayersModel(
      tf.io.http(`http://127.0.0.1:${port}/models/v1/model.json`, { fetchFunc }),
    );
    expect(liveTensors() - before).toBe(loaded.weights.length);
    const x = images(2, 32, 9);
    expect(Array.from(predict(loaded, x))).toEqual(Array.from(predict(model, x)));
    tf.dispose(x);
    model.dispose();
    loaded.dispose();
  });
});
