import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../../../src/ml/models/architectures';
import { HostAdam, isAdam } from '../../../src/ml/onnx/host-adam';
import { OnnxTrainer } from '../../../src/ml/onnx/trainer';
import { Rng } from '../../../src/ml/rng';
import { initRuntime } from '../../../src/ml/runtime';
import { restoreOptimizer, saveOptimizer } from '../../../src/ml/training/checkpoint';
import { realBatch, relativeError } from '../../helpers/tfjs-reference';

/**
 * HostAdam must be tf.train.adam: the same weights, moments, beta powers and iteration count after
 * several steps, whether its state stays on the host throughout or goes through TF.js (and a
 * checkpoint's bytes) between steps, as train.ts does at every epoch.
 */
beforeAll(async () => {
  await initRuntime();
});

const SHAPES = [[3, 3, 3, 4], [4], [7, 1]];

function gaussian(rng: Rng, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.next() + rng.next() + rng.next() - 1.5) * scale);
}

/** Seeded starting weights and `steps` gradients per variable, spanning several magnitudes. */
function problem(seed: number, steps: number) {
  const rng = new Rng(seed);
  const sizes = SHAPES.map((s) => s.reduce((a, b) => a * b, 1));
  return {
    initial: sizes.map((n) => gaussian(rng, n, 0.5)),
    gradients: Array.from({ length: steps }, (_, k) =>
      sizes.map((n) => gaussian(rng, n, 10 ** ((k % 3) - 2))),
    ),
  };
}

const variablesOf = (initial: Float32Array[]) =>
  initial.map((values, i) => tf.tidy(() => tf.variable(tf.tensor(values, SHAPES[i]), true)));

function tfjsSteps(variables: tf.Variable[], optimizer: tf.Optimizer, gradients: Float32Array[][]) {
  for (const step of gradients) {
    const map: tf.NamedTensorMap = {};
    variables.forEach((v, i) => (map[v.name] = tf.tensor(step[i], SHAPES[i])));
    optimizer.applyGradients(map);
    tf.dispose(Object.values(map));
  }
}

async function stateOf(variables: tf.Variable[], optimizer: tf.Optimizer) {
  const slots = await optimizer.getWeights();
  const state = {
    weights: variables.map((v) => v.dataSync() as Float32Array),
    slots: slots.slice(1).map((s) => s.tensor.dataSync() as Float32Array),
    names: slots.map((s) => s.name),
    iterations: optimizer.iterations,
    products: (['accBeta1', 'accBeta2'] as const).map(
      (k) => (optimizer as unknown as Record<string, tf.Variable>)[k].dataSync()[0],
    ),
  };
  slots[0].tensor.dispose();
  return state;
}

describe('HostAdam', () => {
  it('recognises tf.train.adam only', () => {
    const [adam, rmsprop, sgd] = [tf.train.adam(0.01), tf.train.rmsprop(0.01), tf.train.sgd(0.1)];
    expect([adam, rmsprop, sgd].map(isAdam)).toEqual([true, false, false]);
    for (const optimizer of [adam, rmsprop, sgd]) optimizer.dispose();
  });

  it('follows tf.train.adam over 7 steps, through TF.js and a checkpoint midway', async () => {
    const { initial, gradients } = problem(3, 7);
    const before = tf.memory().numTensors;
    const refVariables = variablesOf(initial);
    const reference = tf.train.adam(0.01);
    tfjsSteps(refVariables, reference, gradients);

    const hostVariables = variablesOf(initial);
    let optimizer = tf.train.adam(0.01);
    let host = HostAdam.load(optimizer, hostVariables);
    for (const step of gradients.slice(0, 4)) host.apply(step);
    host.store();
    // A checkpoint's optimizer state restored into a new optimizer, as a resumed run does.
    const saved = await saveOptimizer(optimizer);
    optimizer.dispose();
    optimizer = tf.train.adam(0.01);
    await restoreOptimizer(optimizer, saved);
    host = HostAdam.load(optimizer, hostVariables);
    expect(host.holds(optimizer, hostVariables)).toBe(true);
    for (const step of gradients.slice(4)) host.apply(step);
    host.store();

    const expected = await stateOf(refVariables, reference);
    const actual = await stateOf(hostVariables, optimizer);
    expect(actual.iterations).toBe(7);
    expect(actual.iterations).toBe(expected.iterations);
    const slotNames = (vs: tf.Variable[]) => [
      'iter',
      ...vs.map((v) => `${v.name}/m`),
      ...vs.map((v) => `${v.name}/v`),
    ];
    expect(expected.names).toEqual(slotNames(refVariables));
    expect(actual.names).toEqual(slotNames(hostVariables));
    expect(actual.products).toEqual(expected.products);
    actual.weights.forEach((w, i) => {
      expect(relativeError(w, expected.weights[i])).toBeLessThan(1e-6);
      // The update moved the weights: the comparison is not of two untouched copies.
      expect(relativeError(w, initial[i])).toBeGreaterThan(1e-3);
    });
    actual.slots.forEach((s, i) => expect(relativeError(s, expected.slots[i])).toBeLessThan(1e-6));

    tf.dispose([...refVariables, ...hostVariables]);
    reference.dispose();
    optimizer.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('OnnxTrainer.stepInPlace', () => {
  it('trains lymphonet as step() with tf.train.adam does, and leaks no tensor', async () => {
    const size = 32;
    const batch = await realBatch(size, 8);
    const reference = buildModel('lymphonet', size, 5);
    const inPlace = buildModel('lymphonet', size, 5);
    const before = tf.memory().numTensors;
    const referenceTrainer = await OnnxTrainer.create(reference, { threads: 1 });
    const trainer = await OnnxTrainer.create(inPlace, { threads: 1 });
    const referenceOptimizer = tf.train.adam(0.001);
    const optimizer = tf.train.adam(0.001);
    try {
      const referenceVariables = reference.trainableWeights.map((w) => w.read() as tf.Variable);
      const variables = inPlace.trainableWeights.map((w) => w.read() as tf.Variable);
      for (let step = 0; step < 3; step++) {
        const expected = await referenceTrainer.step(batch, referenceOptimizer, referenceVariables);
        const actual = await trainer.stepInPlace(batch, optimizer, variables);
        expect(actual.correct).toBe(expected.correct);
        expect(Math.abs(actual.loss - expected.loss)).toBeLessThan(1e-5);
        // Nothing reaches TF.js before sync() (the epoch's end in train.ts).
        if (step === 0) expect(optimizer.iterations).toBe(0);
        if (step === 1) trainer.sync();
      }
      trainer.sync();
      expect(optimizer.iterations).toBe(3);
      const all = (m: tf.LayersModel) => m.weights.map((w) => w.read().dataSync());
      const expectedWeights = all(reference);
      const moved = all(inPlace).map((w, i) => relativeError(w, expectedWeights[i]));
      expect(moved.filter((e) => !(e < 1e-5))).toEqual([]);
    } finally {
      referenceOptimizer.dispose();
      optimizer.dispose();
      await referenceTrainer.dispose();
      await trainer.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    reference.dispose();
    inPlace.dispose();
  });
});
