/**
 * `npx tsx bench/training-step-ab.ts REV [rounds] [threads]`: one training step's forward and backward pass
 * (OnnxTrainer.gradients: the training graph in onnxruntime, the batch-norm statistics, no optimizer
 * update) built by this tree's src/ and by src/ of git revision REV, on the same lymphonet weights and the
 * same batch, alternating step by step so that load from other processes falls on both alike. Data: 32
 * seeded synthetic cells at 96x96 (seeds 1-32, src/ml/data/synthetic.ts), the default recipe's model.
 * Prints p50 wall and CPU ms per step (every thread of the process), the ratio, and the largest relative
 * difference between the two sides' loss and gradients.
 */
import path from 'node:path';
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { loadMlSettings } from '../src/config';
import { buildModel } from '../src/ml/models/architectures';
import { OnnxTrainer } from '../src/ml/onnx/trainer';
import { initRuntime } from '../src/ml/runtime';
import { configureMl } from '../src/ml/settings';
import { checkout } from './revision';
import { percentile, round } from './stats';
import { syntheticBatch } from './training';

const SIZE = 96;
const BATCH = 32;

async function main() {
  const rev = process.argv[2];
  if (!rev) throw new Error('usage: npx tsx bench/training-step-ab.ts REV [rounds] [threads]');
  const rounds = Number(process.argv[3] ?? 20);
  const threads = Number(process.argv[4] ?? 1);
  const baseRoot = checkout(rev);
  const base = (await import(path.join(baseRoot, 'src', 'ml', 'onnx', 'trainer')))
    .OnnxTrainer as typeof OnnxTrainer;
  configureMl(loadMlSettings());
  await initRuntime();
  const model = buildModel('lymphonet', SIZE, 1);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const batch = syntheticBatch(BATCH, SIZE, 1);
  const sides: Array<[string, OnnxTrainer]> = [
    [rev, await base.create(model, { threads })],
    ['this tree', await OnnxTrainer.create(model, { threads })],
  ];
  const wall = sides.map(() => [] as number[]);
  const cpu = sides.map(() => [] as number[]);
  const answers: Array<{ loss: number; gradients: Float32Array[] }> = [];
  for (const [, trainer] of sides) {
    const { gradients, loss } = await trainer.gradients(batch, variables);
    answers.push({ loss, gradients: variables.map((v) => gradients[v.name].dataSync() as Float32Array) });
    tf.dispose(Object.values(gradients));
  }
  const load = loadavg()[0];
  for (let r = 0; r < rounds; r++) {
    for (const [s, [, trainer]] of sides.entries()) {
      const used = process.cpuUsage();
      const start = performance.now();
      const { gradients } = await trainer.gradients(batch, variables);
      wall[s].push(performance.now() - start);
      const spent = process.cpuUsage(used);
      cpu[s].push((spent.user + spent.system) / 1000);
      tf.dispose(Object.values(gradients));
    }
  }
  let largest = Math.abs(answers[1].loss - answers[0].loss) / Math.abs(answers[0].loss);
  answers[0].gradients.forEach((g, i) => {
    let diff = 0;
    let scale = 0;
    g.forEach((value, j) => {
      diff = Math.max(diff, Math.abs(value - answers[1].gradients[i][j]));
      scale = Math.max(scale, Math.abs(value));
    });
    largest = Math.max(largest, diff / scale);
  });
  const row = (s: number) => ({
    side: sides[s][0],
    wallMsP50: round(percentile(wall[s], 50)),
    cpuMsP50: round(percentile(cpu[s], 50)),
    imagesPerSecond: round((BATCH * 1000) / percentile(wall[s], 50)),
  });
  console.log(
    JSON.stringify(
      {
        data: `${BATCH} seeded synthetic cells (seeds 1-${BATCH}) at ${SIZE}x${SIZE}, lymphonet`,
        threads,
        rounds,
        sides: [row(0), row(1)],
        wallRatio: round(percentile(wall[1], 50) / percentile(wall[0], 50)),
        cpuRatio: round(percentile(cpu[1], 50) / percentile(cpu[0], 50)),
        largestRelativeDifference: largest,
        loadavg: [load, ...loadavg()].map((l) => round(l)),
      },
      null,
      1,
    ),
  );
  for (const [, trainer] of sides) await trainer.dispose();
  model.dispose();
}

void main();
