/**
 * Parallel cross-validation folds (issue 16): the speed-up of a fanned-out training job over the same job
 * run by one worker, in the local Lambda emulator, and the per-core training throughput the Lambda
 * projection in docs/PERFORMANCE.md is computed from.
 *
 *   npm run bench:folds                    # 3 folds x 1 seed + the served network, 2 units at once
 *                                          # each way twice, in the order one, fanned, fanned, one
 *   npm run bench:folds -- --concurrency 4 --folds 5 --epochs 24
 *
 * Data: seeded synthetic cells (src/ml/data/synthetic.ts), 24 subjects of 4 cells, half ALL, stored as 64 px
 * BMPs; networks: lymphonet at 48 px, 8 epochs, batch 16 (small, so the bench runs in minutes). Each job
 * runs in a fresh local stack (S3 on 127.0.0.1, the API, the emulator's child processes) started by a child
 * process of this script, one after another: first with fold concurrency 0 (one worker runs every fold,
 * then the served network) and fanned out, in the order one, fanned, fanned, one, so that a drift in the
 * machine's load hits both ways alike. Wall time is from startTraining to SUCCEEDED.
 *
 * Per-core throughput: `train()` on lymphonet at 96 px (the recipe's size), batch 32, augmentation on,
 * onnxruntime on one thread, 320 synthetic 96 px cells for 2 epochs in this process: images per second of
 * this process's CPU time (user + system), which on a shared machine is the per-core figure.
 * Prints a table and, last, one JSON line with every figure.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadMlSettings } from '../src/config';
import { startLocalStack } from '../src/local/stack';
import { toModelInput } from '../src/ml/image/preprocess';
import { encodeBmp, syntheticCell } from '../src/ml/data/synthetic';
import { configureMl } from '../src/ml/settings';
import { DEFAULT_TRAINING_CONFIG, train, type Example } from '../src/ml/training/train';

const SUBJECTS = 24;
const CELLS_PER_SUBJECT = 4;
const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const EPOCHS = arg('epochs', 8);

/** One job in a fresh local stack; prints one JSON line with its wall time. */
async function runJob(concurrency: number, folds: number, seeds: number): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-bench-folds-'));
  const adminKey = 'lsk_bench_folds_admin_key_0123456789abcdef';
  const stack = await startLocalStack({
    dataDir: dir,
    adminKey,
    demoModel: false,
    logLevel: 'error',
    // Every unit may run when fanned out (the job's own concurrency bounds them); one worker otherwise.
    workerConcurrency: Math.max(1, concurrency),
    env: {
      LYMPHOSCOPE_FOLD_CONCURRENCY: String(concurrency),
      LYMPHOSCOPE_RECIPE_FOLDS: String(folds),
      LYMPHOSCOPE_RECIPE_SEEDS: String(seeds),
      LYMPHOSCOPE_ONNX_THREADS: '1',
    },
  });
  const gql = async (query: string, variables?: Record<string, unknown>) => {
    const response = await fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': adminKey },
      body: JSON.stringify({ query, variables }),
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the bench reads a few known fields
    const body = (await response.json()) as { data?: Record<string, any>; errors?: unknown[] };
    if (body.errors?.length) throw new Error(JSON.stringify(body.errors));
    return body.data!;
  };
  try {
    for (let s = 0; s < SUBJECTS; s++) {
      const label = (s % 2) as 0 | 1;
      const folder = label ? 'all' : 'hem';
      for (let c = 0; c < CELLS_PER_SUBJECT; c++) {
        const bmp = encodeBmp(syntheticCell(9000 + s * 10 + c, { label, size: 64 }));
        const name = `UID_${label ? '' : 'H'}${s + 1}_1_${c + 1}_${folder}.bmp`;
        await stack.services.store.put(`imports/bench/${folder}/${name}`, bmp, { contentType: 'image/bmp' });
      }
    }
    const { createDataset } = await gql('mutation { createDataset(input: { name: "bench folds" }) { id } }');
    await gql('mutation($input: ImportImagesInput!) { importImages(input: $input) { accepted } }', {
      input: { datasetId: createDataset.id, s3Prefix: 'imports/bench' },
    });
    const started = performance.now();
    const { startTraining } = await gql(
      'mutation($input: StartTrainingInput!) { startTraining(input: $input) { id } }',
      {
        input: {
          datasetId: createDataset.id,
          architecture: 'LYMPHONET',
          inputSize: 48,
          epochs: EPOCHS,
          patience: EPOCHS,
          batchSize: 16,
        },
      },
    );
    for (;;) {
      const { trainingJob } = await gql('query($id: ID!) { trainingJob(id: $id) { status error } }', {
        id: startTraining.id,
      });
      if (trainingJob.status === 'SUCCEEDED') break;
      if (trainingJob.status === 'FAILED' || trainingJob.status === 'CANCELLED')
        throw new Error(`The bench job ended ${trainingJob.status}: ${trainingJob.error}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const wallSeconds = (performance.now() - started) / 1000;
    console.log(JSON.stringify({ concurrency, wallSeconds: Number(wallSeconds.toFixed(1)) }));
  } finally {
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Images per CPU-second of `train()` at the recipe's input size, on one onnxruntime thread. */
async function perCoreThroughput(): Promise<{
  imagesPerCpuSecond: number;
  imagesPerSecond: number;
  runtime: string;
}> {
  configureMl({ ...loadMlSettings(), onnxThreads: 1 });
  const size = DEFAULT_TRAINING_CONFIG.inputSize;
  const examples: Example[] = [];
  for (let i = 0; i < 384; i++) {
    const label = (i % 2) as 0 | 1;
    examples.push({ pixels: await toModelInput(syntheticCell(20_000 + i, { label, size }), size), label });
  }
  const epochs = 2;
  const trainSet = examples.slice(0, 320);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await train({
    config: { ...DEFAULT_TRAINING_CONFIG, epochs, patience: epochs, testTimeAugmentation: false },
    train: trainSet,
    validation: examples.slice(320),
  });
  const used = process.cpuUsage(cpu);
  result.model?.dispose();
  const images = trainSet.length * result.history.length;
  return {
    imagesPerCpuSecond: Number((images / ((used.user + used.system) / 1e6)).toFixed(1)),
    imagesPerSecond: Number((images / ((performance.now() - started) / 1000)).toFixed(1)),
    runtime: result.trainingRuntime,
  };
}

async function main() {
  const child = process.argv.indexOf('--job');
  const folds = arg('folds', 3);
  const seeds = arg('seeds', 1);
  if (child >= 0) return runJob(Number(process.argv[child + 1]), folds, seeds);

  const concurrency = arg('concurrency', 2);
  const wall: Record<number, number[]> = { 0: [], [concurrency]: [] };
  for (const c of [0, concurrency, concurrency, 0]) {
    const run = spawnSync(
      process.execPath,
      [
        ...['--import', 'tsx', __filename, '--job', String(c)],
        ...['--folds', String(folds), '--seeds', String(seeds), '--epochs', String(EPOCHS)],
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
    );
    const line = run.stdout.trim().split('\n').pop() ?? '';
    if (run.status !== 0 || !line.startsWith('{')) throw new Error(`The job with concurrency ${c} failed`);
    wall[c].push((JSON.parse(line) as { wallSeconds: number }).wallSeconds);
  }
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const perCore = await perCoreThroughput();
  const figures = {
    data: `synthetic cells (src/ml/data/synthetic.ts): ${SUBJECTS} subjects x ${CELLS_PER_SUBJECT}, 64 px BMP`,
    job: `lymphonet 48 px, ${EPOCHS} epochs, ${folds} folds x ${seeds} seed(s) + the served network`,
    sequentialSeconds: wall[0],
    parallelSeconds: wall[concurrency],
    concurrency,
    speedUp: Number((sum(wall[0]) / sum(wall[concurrency])).toFixed(2)),
    trainImagesPerCpuSecond96px: perCore.imagesPerCpuSecond,
    trainImagesPerSecond96px: perCore.imagesPerSecond,
    trainingRuntime: perCore.runtime,
    cores: os.availableParallelism(),
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
  console.log('parallel folds, local emulator');
  console.table({
    'one worker, folds in turn (s)': figures.sequentialSeconds.join(', '),
    [`fanned out, ${concurrency} units at once (s)`]: figures.parallelSeconds.join(', '),
    'speed-up': figures.speedUp,
    'train(), lymphonet 96 px (img per CPU-s)': figures.trainImagesPerCpuSecond96px,
  });
  console.log(JSON.stringify(figures));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
