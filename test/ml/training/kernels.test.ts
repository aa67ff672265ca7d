import * as tf from '@tensorflow/tfjs';
import { wasmTrainingKernelNames, withShippedKernel } from '../../../src/ml/training/kernels';
import { LARGE_REDUCTION } from '../../../src/ml/training/kernels/reduce';
import { Rng } from '../../../src/ml/rng';
import { initRuntime } from '../../../src/ml/runtime';

/**
 * Every kernel we register for wasm is checked against the cpu backend (which ships inside
 * @tensorflow/tfjs) on random inputs; then a whole conv net's gradients are compared.
 */

type Values = { data: Float32Array | Int32Array | Uint8Array; shape: number[] };

let rng: Rng;

beforeAll(async () => {
  await initRuntime();
  expect(tf.getBackend()).toBe('wasm');
});

beforeEach(() => {
  rng = new Rng(20240601);
});

afterEach(async () => {
  await tf.setBackend('wasm');
});

function random(shape: number[], lo = -1, hi = 1): Values {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * rng.next();
  return { data, shape };
}

/** Runs `f` on fresh tensors of `inputs` on one backend and returns the outputs' values. */
async function runOn(
  backend: 'cpu' | 'wasm',
  inputs: Values[],
  f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
) {
  await tf.setBackend(backend);
  const tensors = inputs.map((v) =>
    tf.tensor(v.data, v.shape, v.data instanceof Int32Array ? 'int32' : 'float32'),
  );
  const result = f(...tensors);
  const outputs = Array.isArray(result) ? result : [result];
  const values = outputs.map((t) => ({ data: t.dataSync().slice(), shape: t.shape }));
  tf.dispose([...tensors, ...outputs]);
  return values;
}

/** max |a - b| / max |b|: the relative error of a whole tensor, robust to entries near zero. */
function relativeError(actual: Values, expected: Values): number {
  expect(actual.shape).toEqual(expected.shape);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.data.length; i++) {
    diff = Math.max(diff, Math.abs(actual.data[i] - expected.data[i]));
    scale = Math.max(scale, Math.abs(expected.data[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

async function expectSameOnBothBackends(
  inputs: Values[],
  f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
) {
  const wasm = await runOn('wasm', inputs, f);
  const cpu = await runOn('cpu', inputs, f);
  expect(wasm).toHaveLength(cpu.length);
  wasm.forEach((w, i) => expect(relativeError(w, cpu[i])).toBeLessThan(1e-4));
}

/** Backend buffers alive: catches buffers a kernel allocates on the heap and forgets to release. */
const wasmBuffers = () =>
  (tf.engine().findBackend('wasm') as unknown as { numDataIds(): number }).numDataIds();

test('the kernels training needs are registered for wasm', () => {
  expect(wasmTrainingKernelNames()).toEqual(
    expect.arrayContaining(['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'Tile', 'Sum']),
  );
  for (const name of wasmTrainingKernelNames()) expect(tf.getKernel(name, 'wasm')).toBeDefined();
});

describe.each([
  // [height, width, inChannels, outChannels, kernel, stride, padding]
  [7, 7, 3, 4, 3, 1, 'valid'],
  [8, 8, 3, 4, 3, 1, 'same'],
  [9, 6, 2, 5, 3, 2, 'same'],
  [8, 8, 4, 3, 3, 2, 'valid'],
  [7, 8, 3, 2, 3, 2, 'valid'],
  [6, 9, 5, 3, 5, 2, 'same'],
  [10, 10, 3, 4, 2, 2, 'same'],
  [11, 12, 16, 8, 3, 1, 'same'],
] as const)('%ix%i, %i -> %i channels, %i-tap filter, stride %i, %s', (h, w, ci, co, k, stride, pad) => {
  const outHeight = pad === 'same' ? Math.ceil(h / stride) : Math.ceil((h - k + 1) / stride);
  const outWidth = pad === 'same' ? Math.ceil(w / stride) : Math.ceil((w - k + 1) / stride);

  test('Conv2DBackpropFilter matches cpu', async () => {
    const x = random([2, h, w, ci]);
    const dy = random([2, outHeight, outWidth, co]);
    await expectSameOnBothBackends(
      [x, dy],
      (xs, dys) =>
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x: xs, dy: dys },
            { strides: stride, pad, dataFormat: 'NHWC', filterShape: [k, k, ci, co] },
          ) as tf.Tensor,
    );
  });

  test('Conv2DBackpropInput matches cpu', async () => {
    const dy = random([2, outHeight, outWidth, co]);
    const filter = random([k, k, ci, co]);
    await expectSameOnBothBackends([dy, filter], (dys, f) =>
      tf.conv2dTranspose(dys as tf.Tensor4D, f as tf.Tensor4D, [2, h, w, ci], stride, pad),
    );
  });
});

test('Conv2DBackpropInput also agrees with the shipped wasm kernel', async () => {
  const dy = random([3, 12, 12, 8]);
  const filter = random([3, 3, 6, 8]);
  const f = (dys: tf.Tensor, fs: tf.Tensor) =>
    tf.conv2dTranspose(dys as tf.Tensor4D, fs as tf.Tensor4D, [3, 12, 12, 6], 1, 'same');
  const ours = await runOn('wasm', [dy, filter], f);
  const shipped = await withShippedKernel('Conv2DBackpropInput', () => runOn('wasm', [dy, filter], f));
  expect(relativeError(ours[0], shipped[0])).toBeLessThan(1e-5);
});

test('gradient kernels refuse layouts they do not implement, with a clear error', () => {
  const x = tf.zeros([1, 3, 5, 5]);
  const dy = tf.zeros([1, 2, 3, 3]);
  expect(() =>
    tf
      .engine()
      .runKernel(
        'Conv2DBackpropFilter',
        { x, dy },
        { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [3, 3, 3, 2] },
      ),
  ).toThrow(/NHWC/);
  tf.dispose([x, dy]);
});

/** Sum of the pooled map weighted by position, so a gradient routed to the wrong cell changes the result. */
function weightedPoolSum(size: number, stride: number, pad: 'valid' | 'same') {
  return (t: tf.Tensor) => {
    const pooled = tf.maxPool(t as tf.Tensor4D, size, stride, pad);
    return tf.sum(tf.mul(pooled, tf.reshape(tf.linspace(1, 2, pooled.size), pooled.shape)));
  };
}

describe('MaxPoolGrad', () => {
  test.each([
    [[2, 8, 8, 3], 2, 2, 'valid'],
    [[2, 9, 7, 4], 2, 2, 'valid'],
    [[2, 9, 7, 4], 2, 2, 'same'],
    [[1, 10, 10, 2], 3, 2, 'same'],
    [[1, 11, 9, 5], 3, 1, 'valid'],
  ] as const)('input %j, pool %i, stride %i, %s matches cpu', async (shape, size, stride, pad) => {
    await expectSameOnBothBackends([random([...shape])], (x) =>
      tf.grad(weightedPoolSum(size, stride, pad))(x),
    );
  });

  test('ties send the gradient to the first maximum of the window only, like cpu', async () => {
    // Values on a coarse grid tie often, as activations do after ReLU (windows of zeros).
    const x = random([2, 8, 8, 3]);
    x.data.forEach((v, i) => (x.data[i] = Math.round(v)));
    await expectSameOnBothBackends([x], (t) => tf.grad(weightedPoolSum(2, 2, 'valid'))(t));
  });
});

describe('Tile', () => {
  test.each([
    [
      [1, 1, 1, 5],
      [3, 4, 6, 1],
    ],
    [
      [2, 3],
      [2, 3],
    ],
    [
      [3, 1, 2],
      [1, 4, 1],
    ],
    [[4], [3]],
  ])('shape %j by reps %j matches cpu', async (shape, reps) => {
    await expectSameOnBothBackends([random(shape)], (x) => tf.tile(x, reps));
  });

  test('int32 tiles exactly', async () => {
    const ints = { data: Int32Array.from([1, -2, 3, 4, 5, 6]), shape: [2, 3] };
    const [out] = await runOn('wasm', [ints], (x) => tf.tile(x, [2, 2]));
    expect(Array.from(out.data)).toEqual([
      1, -2, 3, 1, -2, 3, 4, 5, 6, 4, 5, 6, 1, -2, 3, 1, -2, 3, 4, 5, 6, 4, 5, 6,
    ]);
  });
});

describe('per-channel Sum', () => {
  // Large enough (2^23 values) to take our path rather than the shipped kernel's. The reference is a
  // float64 sum in the test: the cpu backend takes seconds to transpose this much data.
  test('over the leading axes of a large activation matches a float64 reference', async () => {
    const channels = 64;
    const x = random([8, 128, 128, channels]);
    expect(x.data.length).toBeGreaterThanOrEqual(LARGE_REDUCTION);
    const expected = new Float64Array(channels);
    x.data.forEach((v, i) => (expected[i % channels] += v));
    const reference = { data: Float32Array.from(expected), shape: [channels] };
    const [sum, kept] = await runOn('wasm', [x], (t) => [tf.sum(t, [0, 1, 2]), tf.sum(t, [2, 0, 1], true)]);
    expect(relativeError(sum, reference)).toBeLessThan(1e-4);
    expect(kept.shape).toEqual([1, 1, 1, channels]);
    expect(relativeError({ data: kept.data, shape: [channels] }, reference)).toBeLessThan(1e-4);
  });

  test('other reductions still go to the shipped kernel and match cpu', async () => {
    const x = random([3, 5, 7, 4]);
    await expectSameOnBothBackends([x], (t) => [
      tf.sum(t, [1, 2]),
      tf.mean(t, -1),
      tf.sum(t),
      tf.mean(t, [0, 1, 2]),
    ]);
  });
});

test('gradients of a small conv net (conv, batch norm, ReLU, max pooling, dense) agree on cpu and wasm', async () => {
  const x = random([4, 13, 13, 3], 0, 1);
  const w1 = random([3, 3, 3, 8], -0.5, 0.5);
  const b1 = random([8], -0.1, 0.1);
  const w2 = random([3, 3, 8, 6], -0.5, 0.5);
  const gamma = random([8], 0.5, 1.5);
  const beta = random([8], -0.5, 0.5);
  const w3 = random([6 * 3 * 3, 1], -0.5, 0.5);
  const labels = { data: Float32Array.from([1, 0, 1, 0]), shape: [4, 1] };
  const loss = (xs: tf.Tensor, y: tf.Tensor, [k1, bias, g, b, k2, k3]: tf.Tensor[]) => {
    let h = tf.relu(tf.add(tf.conv2d(xs as tf.Tensor4D, k1 as tf.Tensor4D, 1, 'same'), bias)) as tf.Tensor4D;
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    h = tf.relu(tf.batchNorm(h, mean, variance, b, g, 1e-3)) as tf.Tensor4D;
    h = tf.maxPool(h, 2, 2, 'same');
    h = tf.relu(tf.conv2d(h, k2 as tf.Tensor4D, 2, 'valid'));
    const logits = tf.matMul(tf.reshape(h, [4, -1]), k3);
    return tf.losses.sigmoidCrossEntropy(y, logits) as tf.Scalar;
  };
  const before = wasmBuffers();
  await expectSameOnBothBackends([x, labels, w1, b1, gamma, beta, w2, w3], (xs, y, ...weights) =>
    tf.grads((...ws: tf.Tensor[]) => loss(xs, y, ws))(weights),
  );
  await tf.setBackend('wasm');
  expect(wasmBuffers()).toBe(before);
});
