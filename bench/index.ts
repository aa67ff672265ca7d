/**
 * `npm run bench`: the performance figures of issues 6 and 15, each beside its reference measured in the same run.
 *
 *   npm run bench               # about 3 minutes on 2 cores
 *   npm run bench -- --quick    # fewer repetitions, for a smoke run
 *
 * Prints tables and writes the same figures to bench/results/<date>.json and bench/results/latest.json.
 * Which data each figure uses is printed with it: real C-NMC cells from data/cnmc-sample where pixels
 * matter (latency, tensor growth, cold start), random or synthetic pixels where they cannot change the
 * speed (throughput). docs/PERFORMANCE.md explains the choices these figures justified.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { estimateFlops } from '../src/ml/models/architectures';
import { decodeImage } from '../src/ml/image/decode';
import { loadModel } from '../src/ml/models/model-io';
import { exportOnnx } from '../src/ml/onnx/export';
import { OnnxClassifier, onnxRuntime } from '../src/ml/onnx/session';
import type { DecisionRule } from '../src/ml/serving/predictor';
import { initRuntime } from '../src/ml/runtime';
import { configureMl } from '../src/ml/settings';
import { loadMlSettings } from '../src/config';
import { encodeBmp } from '../src/ml/data/synthetic';
import { sampleImages } from '../test/helpers/sample';
import { benchColdStart } from './cold-start';
import { benchEndToEnd } from './end-to-end';
import { benchInference, type InferenceRow } from './inference';
import { benchLatency } from './latency';
import { benchGrowth } from './leak';
import { benchPeak, machinePeak as bestPeak } from './peak';
import { buildReferenceNet } from './reference-net';
import { round } from './stats';
import { benchTraining } from './training';
import { builtNetwork } from '../src/ml/serving/tfjs-network';

const quick = process.argv.includes('--quick');
const ROOT = path.join(__dirname, '..');
const DEMO_DIR = path.join(ROOT, 'data', 'demo-model');

function table(rows: Array<Record<string, unknown>>): void {
  if (rows.length === 0) return;
  const keys = Object.keys(rows[0]);
  const cells = rows.map((r) => keys.map((k) => String(r[k] ?? '')));
  const widths = keys.map((k, i) => Math.max(k.length, ...cells.map((c) => c[i].length)));
  console.log('  ' + keys.map((k, i) => k.padEnd(widths[i])).join('  '));
  for (const c of cells) console.log('  ' + c.map((v, i) => v.padEnd(widths[i])).join('  '));
}

function section(title: string, data: string): void {
  console.log(`\n${title}\n  data: ${data}`);
}

function cpuModel(): string {
  try {
    const line = execFileSync('lscpu', { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.startsWith('Model name:'));
    if (line) return line.slice('Model name:'.length).trim();
  } catch {
    // lscpu is missing on some systems; Node's view is second best.
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

async function main() {
  const started = performance.now();
  configureMl(loadMlSettings());
  const runtime = await initRuntime();
  const machine = {
    cpu: cpuModel(),
    cores: os.availableParallelism(),
    memoryGb: round(os.totalmem() / 2 ** 30),
    node: process.version,
    loadAverageAtStart: os.loadavg().map(round),
  };
  const onnxVersion = onnxRuntime()?.env.versions.node ?? null;
  console.log(
    `Lymphoscope bench ${new Date().toISOString()}  ${machine.cpu}, ${machine.cores} cores, node ${machine.node}\n` +
      `TF.js ${runtime.tfjsVersion} backend ${runtime.backend} (simd ${runtime.simd}, threads ${runtime.threads}); ` +
      `onnxruntime-node ${onnxVersion ?? 'unavailable'}; load average ${machine.loadAverageAtStart.join(' ')}`,
  );

  const demoBundle = {
    modelJson: JSON.parse(readFileSync(path.join(DEMO_DIR, 'model.json'), 'utf8')),
    weights: readFileSync(path.join(DEMO_DIR, 'weights.bin')),
  };
  const demoCard = JSON.parse(readFileSync(path.join(DEMO_DIR, 'card.json'), 'utf8')) as DecisionRule;
  const demo = await loadModel(demoBundle);
  const demoNetwork = builtNetwork(demo);
  const demoOnnxExport = exportOnnx(demo);
  const demoOnnx = await OnnxClassifier.create(demoOnnxExport.bytes, demoCard.inputSize);
  const reference = buildReferenceNet(96);
  const models = [
    { name: 'lymphonet (demo model)', model: demo },
    { name: 'reference 6x32 conv + dense 64', model: reference },
  ];

  section(
    "Machine peak: the best of a 3x3 conv (batch 32, 96x96, 64->64, 21.7 GFLOP) and a 2048^3 GEMM in onnxruntime, the conv in TF.js, and the CPU's FMA figure",
    'random values',
  );
  const peak = await benchPeak(runtime.backend, quick);
  table(peak as unknown as Array<Record<string, unknown>>);
  const peakWinner = bestPeak(peak);
  const machinePeak = peakWinner.gflopsPerSecond;
  console.log(`  peak used for every share below: ${machinePeak} GFLOP/s, from ${peakWinner.winner}`);

  section('Inference throughput at 96x96', 'random pixels (speed does not depend on them)');
  const inference: InferenceRow[] = [];
  for (const { name, model } of models) {
    console.log(`  ${name}: ${round(estimateFlops(model) / 1e9)} GFLOP per image`);
    inference.push(...(await benchInference(name, model, runtime.backend, quick)));
  }
  table(inference as unknown as Array<Record<string, unknown>>);

  const samples = sampleImages();
  section(
    'Single-image latency by stage, ms (decode BMP, resize to 96, predict + Grad-CAM, heat-map PNG, morphology, out-of-domain)',
    `the ${samples.length} real C-NMC cells of data/cnmc-sample (450x450 BMP), demo model`,
  );
  const passes = quick ? 1 : 3;
  const bytes = samples.map((s) => s.bytes);
  const latency = await benchLatency(demoNetwork, demoCard, bytes, [demoOnnx, null], passes);
  table(
    latency.map((l) => ({
      runtime: l.runtime,
      samples: l.samples,
      ...Object.fromEntries(Object.entries(l.stages).map(([s, v]) => [s, `${v.p50} / ${v.p99}`])),
    })),
  );
  console.log('  (p50 / p99)');
  // The issue states its latency goal at 96x96: the same cells, resized beforehand and stored as 96x96 BMPs.
  // Resized once: the 96x96 latency pass and the growth pass below use the same cells.
  const small = await Promise.all(
    samples.map(async (s) => {
      const image = await decodeImage(s.bytes);
      const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
        .resize(96, 96, { fit: 'fill', kernel: 'lanczos3' })
        .raw()
        .toBuffer();
      return { width: 96, height: 96, data: new Uint8Array(data) };
    }),
  );
  const bytes96 = small.map((image) => encodeBmp(image));
  const latency96 = await benchLatency(demoNetwork, demoCard, bytes96, [demoOnnx, null], passes);
  console.log('  the same cells as 96x96 BMPs:');
  table(
    latency96.map((l) => ({
      runtime: l.runtime,
      samples: l.samples,
      ...Object.fromEntries(Object.entries(l.stages).map(([s, v]) => [s, `${v.p50} / ${v.p99}`])),
    })),
  );

  section(
    'End to end over HTTP, one request at a time: predict (base64 BMP, heat map on, stored) and health',
    `the ${samples.length} real C-NMC cells of data/cnmc-sample, the local stack (Lambda handler, local S3) in this process, demo model`,
  );
  const { rows: endToEnd, breakdown: endToEndBreakdown } = await benchEndToEnd(bytes, quick ? 1 : 2);
  table(endToEnd as unknown as Array<Record<string, unknown>>);
  console.log(
    "  where a predict request goes (from the handler's JSON log lines; means add up, p50 beside):",
  );
  table(endToEndBreakdown as unknown as Array<Record<string, unknown>>);
  console.log(`  the analysis alone (decode .. morphology, above): p50 ${latency[0].stages.total.p50} ms`);

  section(
    'Training throughput, 96x96, batch 32',
    'synthetic cells (src/ml/data/synthetic.ts) and random pixels',
  );
  const training = await benchTraining(quick);
  table(training as unknown as Array<Record<string, unknown>>);

  section(
    'Cold start: fresh process to the first prediction with a heat map',
    `${samples[0].name}, demo model`,
  );
  const coldStart = await benchColdStart(demoOnnxExport.bytes, samples[0].file, quick ? 1 : 3);
  table(coldStart as unknown as Array<Record<string, unknown>>);

  const growthCount = quick ? 200 : 1000;
  section(
    `Growth over ${growthCount} predictions with heat maps`,
    'real C-NMC cells, resized to 96x96 beforehand so the TF.js path finishes in time',
  );
  const growth = [
    await benchGrowth(demoNetwork, demoCard, small, demoOnnx, growthCount),
    await benchGrowth(demoNetwork, demoCard, small, null, growthCount),
  ];
  table(growth as unknown as Array<Record<string, unknown>>);

  // The goals of issues 6 and 15, each against its reference from this run.
  const served = latency[0];
  const find = (model: string, rt: string, threads: number, batch: number) =>
    inference.find(
      (r) =>
        r.model.startsWith(model) && r.runtime.startsWith(rt) && r.threads === threads && r.batch === batch,
    )!;
  const servedRef = find(
    'reference',
    served.runtime === 'onnxruntime' ? 'onnxruntime' : 'tfjs',
    served.runtime === 'onnxruntime' ? 2 : 1,
    32,
  );
  const tfjsRef = find('reference', 'tfjs', 1, 32);
  const userEpoch = training[0] as (typeof training)[0] & { epochOf10000Seconds: number };
  const lymphonetTraining = training.find(
    (t) => t.how.startsWith('train(), 1 epoch') && t.runtime === 'onnxruntime',
  )!;
  const lymphonetTfjsTraining = training.find(
    (t) => t.how.startsWith('train(), 1 epoch') && t.runtime === 'tfjs',
  )!;
  const trainingRuntime = lymphonetTraining.imagesPerSecond > 0 ? 'onnxruntime' : 'tfjs';
  const coldServed = coldStart.find((c) => c.runtime === served.runtime) ?? coldStart[0];
  const served2e = endToEnd[0];
  const ratios = {
    // Two different things: the runtime that serves against the TF.js backend it replaced.
    inferenceServedVsTfjs: round(servedRef.imagesPerSecond / tfjsRef.imagesPerSecond),
    inferenceServedVsPeak: round(servedRef.gflopsPerSecond / machinePeak),
    endToEndP50VsTarget15ms: round(served2e.p50Ms / 15),
    analysisP50VsTarget10ms: round(served.stages.total.p50 / 10),
    userEpochVsPeak: round(userEpoch.gflopsPerSecond / machinePeak),
    latencyP50VsTarget15ms: round(served.stages.total.p50 / 15),
    latencyP50At96VsTarget15ms: round(latency96[0].stages.total.p50 / 15),
    trainingVsPeak: round(lymphonetTraining.gflopsPerSecond / machinePeak),
    epochOf10000SecondsVsTarget120s: round(userEpoch.epochOf10000Seconds / 120),
    coldStartVsTarget1500ms: round(coldServed.spawnToAnswerMs / 1500),
  };
  const goals = [
    {
      goal: 'inference, reference net, batch 32: served runtime vs TF.js; share of peak',
      inUse: `${servedRef.runtime} ${servedRef.threads} threads`,
      value: `${ratios.inferenceServedVsTfjs}x TF.js (${servedRef.imagesPerSecond} vs ${tfjsRef.imagesPerSecond} img/s); ${ratios.inferenceServedVsPeak} of peak`,
      tfjs: round(tfjsRef.gflopsPerSecond / machinePeak),
    },
    {
      goal: 'end to end over HTTP, predict p50 / p90 (<= 15 ms)',
      inUse: served.runtime,
      value: `${served2e.p50Ms} / ${served2e.p90Ms} ms (analysis alone ${served.stages.total.p50} ms)`,
      tfjs: '',
    },
    {
      goal: 'health over HTTP p50 / p90',
      inUse: '',
      value: `${endToEnd[1].p50Ms} / ${endToEnd[1].p90Ms} ms`,
      tfjs: '',
    },
    {
      goal: 'analysis p50 decode..morphology, 450x450 cells (<= 10 ms)',
      inUse: served.runtime,
      value: `${served.stages.total.p50} ms`,
      tfjs: `${latency[1].stages.total.p50} ms`,
    },
    {
      goal: 'latency p50 decode..morphology, 96x96 cells (<= 15 ms)',
      inUse: latency96[0].runtime,
      value: `${latency96[0].stages.total.p50} ms`,
      tfjs: `${latency96[1].stages.total.p50} ms`,
    },
    {
      goal: "training vs machine peak, the default recipe's epoch (>= 0.5)",
      inUse: trainingRuntime,
      value: `${ratios.userEpochVsPeak} (${userEpoch.gflopsPerSecond} / ${machinePeak} GFLOP/s, ${peakWinner.winner})`,
      tfjs: '',
    },
    {
      goal: 'training vs machine peak, train() alone: no augmentation, no validation',
      inUse: trainingRuntime,
      value: `${ratios.trainingVsPeak} (${lymphonetTraining.gflopsPerSecond} GFLOP/s)`,
      tfjs: round(lymphonetTfjsTraining.gflopsPerSecond / machinePeak),
    },
    {
      goal: 'epoch of 10,000 images at 96x96, the default recipe: augmented, + 3,333 validated (<= 120 s)',
      inUse: trainingRuntime,
      value: `${userEpoch.epochOf10000Seconds} s`,
      tfjs: '',
    },
    {
      goal: 'cold start to first answer (<= 1500 ms)',
      inUse: coldServed.runtime,
      value: `${coldServed.spawnToAnswerMs} ms`,
      tfjs: `${coldStart.find((c) => c.runtime === 'tfjs')?.spawnToAnswerMs} ms`,
    },
    {
      goal: `tensor growth over ${growthCount} predictions (0)`,
      inUse: growth[0].runtime,
      value: growth[0].tensorGrowth,
      tfjs: growth[1].tensorGrowth,
    },
  ];
  const peakRssMb = round(process.resourceUsage().maxRSS / 1024);
  const seconds = round((performance.now() - started) / 1000);
  console.log('\nGoals (issues 6 and 15), each against its reference measured above');
  table(goals);
  console.log(`\npeak RSS of this process ${peakRssMb} MB; bench took ${seconds} s`);

  const date = new Date().toISOString();
  const results = {
    date,
    quick,
    machine,
    runtime: { ...runtime, onnxruntime: onnxVersion },
    peak: { rows: peak, machinePeakGflops: machinePeak, winner: peakWinner.winner },
    endToEnd,
    endToEndBreakdown,
    inference,
    latency,
    latency96,
    training,
    coldStart,
    growth,
    ratios,
    peakRssMb,
    seconds,
  };
  const dir = path.join(ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const json = JSON.stringify(results, null, 2) + '\n';
  await writeFile(path.join(dir, `${date.slice(0, 10)}.json`), json);
  await writeFile(path.join(dir, 'latest.json'), json);
  console.log(`written: bench/results/${date.slice(0, 10)}.json and bench/results/latest.json`);

  tf.dispose([]);
  await demoOnnx.dispose();
  demo.dispose();
  reference.dispose();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
