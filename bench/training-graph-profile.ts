/**
 * `npx tsx bench/training-graph-profile.ts [threads]`: onnxruntime's own profile of lymphonet's training
 * graph (src/ml/onnx/training-graph.ts) at 96x96, batch 32, on seeded synthetic cells (seeds 1-32,
 * src/ml/data/synthetic.ts): six runs, the last four summed by operator type and by node, printed as
 * shares of the kernel time and ms per step. The profile's JSON is left in tmp/.
 */
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import type * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { loadMlSettings } from '../src/config';
import { buildModel } from '../src/ml/models/architectures';
import { GraphBuilder } from '../src/ml/onnx/graph';
import { onnxRuntime, sessionOptions } from '../src/ml/onnx/session';
import { appendTrainingGraph, TRAIN_IMAGE, TRAIN_LABEL, TRAIN_WEIGHT } from '../src/ml/onnx/training-graph';
import { initRuntime } from '../src/ml/runtime';
import { configureMl } from '../src/ml/settings';
import { round } from './stats';
import { syntheticBatch } from './training';

const SIZE = 96;
const BATCH = 32;
const RUNS = 6;
const MEASURED = 4;

interface ProfileEvent {
  cat?: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}

async function main() {
  const threads = Number(process.argv[2] ?? 1);
  configureMl(loadMlSettings());
  await initRuntime();
  const ort = onnxRuntime();
  if (!ort) throw new Error('onnxruntime-node is not available.');
  const model = buildModel('lymphonet', SIZE, 1);
  const builder = new GraphBuilder();
  const graph = appendTrainingGraph(builder, model);
  mkdirSync('tmp', { recursive: true });
  const session = await ort.InferenceSession.create(builder.encode('lymphonet-training', 'profile'), {
    ...sessionOptions(threads),
    enableProfiling: true,
    profileFilePrefix: 'tmp/training-graph',
  });
  const batch = syntheticBatch(BATCH, SIZE, 1);
  const feeds: Record<string, Ort.Tensor> = {
    [TRAIN_IMAGE]: new ort.Tensor('float32', batch.pixels, [BATCH, SIZE, SIZE, 3]),
    [TRAIN_LABEL]: new ort.Tensor('float32', batch.labels, [BATCH, 1]),
    [TRAIN_WEIGHT]: new ort.Tensor('float32', batch.weights, [BATCH, 1]),
  };
  const byName = new Map(model.trainableWeights.map((w) => [(w.read() as tf.Variable).name, w.read()]));
  for (const p of graph.parameters) {
    const v = byName.get(p.variableName)!;
    feeds[p.input] = new ort.Tensor('float32', v.dataSync() as Float32Array, v.shape);
  }
  // Dropout keeps every unit at 1 / (1 - rate) = 2 here: the mask's values do not change the cost.
  for (const d of graph.dropouts) {
    feeds[d.input] = new ort.Tensor('float32', new Float32Array(BATCH * d.features).fill(2), [
      BATCH,
      d.features,
    ]);
  }
  for (let i = 0; i < RUNS; i++) {
    const outputs = await session.run(feeds);
    for (const o of Object.values(outputs)) o.dispose();
  }
  session.endProfiling();
  // onnxruntime-node does not answer the file's name: the newest of its prefix.
  const file = readdirSync('tmp')
    .filter((f) => f.startsWith('training-graph_') && f.endsWith('.json'))
    .map((f) => `tmp/${f}`)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  await session.release();
  model.dispose();

  const events = JSON.parse(readFileSync(file, 'utf8')) as ProfileEvent[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const from = runs[RUNS - MEASURED].ts;
  const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= from);
  const total = kernels.reduce((s, e) => s + e.dur, 0);
  const top = (key: (e: ProfileEvent) => string, n: number) => {
    const sums = new Map<string, number>();
    for (const e of kernels) sums.set(key(e), (sums.get(key(e)) ?? 0) + e.dur);
    return [...sums]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, share: round(us / total), msPerStep: round(us / 1000 / MEASURED) }));
  };
  console.log(
    JSON.stringify(
      {
        data: 'seeded synthetic cells (seeds 1-32) at 96x96, lymphonet, batch 32',
        threads,
        runMs: runs.map((r) => round(r.dur / 1000)),
        byOperator: top((e) => e.args?.op_name ?? '?', 14),
        byNode: top((e) => e.name.replace(/_kernel_time$/, ''), 12),
        profile: file,
        loadavg: loadavg().map((l) => round(l)),
      },
      null,
      1,
    ),
  );
}

void main();
