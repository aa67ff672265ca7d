/**
 * Bulk scoring throughput on one core, for the 100,000-cell projection in docs/PERFORMANCE.md.
 *
 *   npm run bench:scoring             # 4 copies of the sample (252 cells), about a minute
 *   npm run bench:scoring -- --quick  # 2 copies
 *
 * Data: the 63 real C-NMC cells of data/cnmc-sample (450x450 BMP), repeated under distinct keys; model:
 * the bundled demo model (lymphonet, 96 px, test-time augmentation over 8 views). onnxruntime runs on one
 * thread (configureMl's onnxThreads, whatever LYMPHOSCOPE_ONNX_THREADS says) and everything else of the
 * pipeline is single-threaded JavaScript, so the figures are per core. On a shared machine a process gets only part of a core: images per
 * second of this process's CPU time (user + system) is the per-core figure; wall-clock rates are printed
 * beside it with the CPU share the process got. Two measurements:
 *  - job: the real scoring worker (runScoringInvocation) in this process, a whole job over every copy in
 *    chunks of 63, against a local S3 server that runs in the same process (its CPU time is counted
 *    against the worker: on Lambda S3 runs elsewhere, so this is pessimistic); a first job loads the
 *    model, a second one runs warm;
 *  - compute: decode + analyzeCell alone on bytes in memory, the ceiling without storage.
 * Prints a table and, last, one JSON line with every figure.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, loadMlSettings } from '../src/config';
import type { ScoringWorkerEvent } from '../src/dispatch/scoring-dispatcher';
import { LOCAL_S3_REGION, startLocalS3 } from '../src/local/s3-server';
import { installDemoModel } from '../src/local/stack';
import { decodeImage } from '../src/ml/image/decode';
import { analyzeCell } from '../src/ml/serving/predictor';
import { initRuntime } from '../src/ml/runtime';
import { configureMl } from '../src/ml/settings';
import { createServices } from '../src/services';
import { imageLimits } from '../src/services/image-limits';
import { runScoringInvocation } from '../src/services/scoring-worker';
import { modelArtifacts } from '../src/services/model-artifacts';

const copies = process.argv.includes('--quick') ? 2 : 4;
const SAMPLE_DIR = path.join(__dirname, '..', 'data', 'cnmc-sample');

async function sample(): Promise<Array<{ name: string; bytes: Buffer }>> {
  const cells: Array<{ name: string; bytes: Buffer }> = [];
  for (const folder of ['all', 'hem']) {
    for (const name of (await readdir(path.join(SAMPLE_DIR, folder)))
      .filter((n) => n.endsWith('.bmp'))
      .sort()) {
      cells.push({ name, bytes: await readFile(path.join(SAMPLE_DIR, folder, name)) });
    }
  }
  return cells;
}

async function main() {
  configureMl({ ...loadMlSettings(), onnxThreads: 1 });
  const runtime = await initRuntime();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-bench-scoring-'));
  const s3 = await startLocalS3({ directory: dir, bucket: 'bench', port: 0 });
  // The local S3 refuses unsigned requests; the SDK's default chain reads the keys from the environment.
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
  process.env.AWS_REGION ??= LOCAL_S3_REGION;
  try {
    const events: ScoringWorkerEvent[] = [];
    const config = loadConfig({
      LYMPHOSCOPE_LOG_LEVEL: 'warn',
      LYMPHOSCOPE_BUCKET: 'bench',
      LYMPHOSCOPE_S3_ENDPOINT: s3.endpoint,
    });
    const services = createServices(config, {
      scoringDispatcher: { dispatch: async (e) => void events.push(e) },
      registration: modelArtifacts,
    });
    const card = await installDemoModel(services);
    if (!card) throw new Error('The demo model (data/demo-model) is missing.');
    const cells = await sample();
    for (let copy = 0; copy < copies; copy++) {
      for (const cell of cells)
        await services.store.put(`imports/bench/copy-${copy}/${cell.name}`, cell.bytes);
    }
    const admin = { keyId: 'bench', role: 'ADMIN' as const, partnerId: 'bench' };
    const deps = {
      store: services.store,
      docs: services.docs,
      models: services.models,
      dispatcher: { dispatch: async (e: ScoringWorkerEvent) => void events.push(e) },
      log: services.log,
      limits: {
        uploadBytes: config.limits.uploadBytes,
        imageSide: config.limits.imageSide,
        scoringImages: config.scoring.maxImages,
      },
      safetyMs: 0,
    };
    /** One scoring job over every copy, run to the end by the real worker in this process. */
    const scoreAll = async () => {
      const job = await services.scoring.start(admin, {
        prefix: 'imports/bench',
        modelVersion: card.version,
        chunkSize: cells.length,
        concurrency: 1,
      });
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      for (let event = events.shift(); event; event = events.shift()) {
        await runScoringInvocation(deps, {
          ...event,
          invocationId: `bench-${job.id}-${event.chunk ?? 'plan'}`,
          remainingMs: () => 600_000,
        });
      }
      const used = process.cpuUsage(cpuBefore);
      const done = await services.scoring.require(job.id);
      if (done.status !== 'SUCCEEDED' || done.scoredImages !== cells.length * copies) {
        throw new Error(`The bench job ended ${done.status} with ${done.scoredImages} rows`);
      }
      return { seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
    };
    const cpuStart = process.cpuUsage();
    const wallStart = performance.now();
    // The first job loads the model and creates the onnxruntime sessions; the second runs warm. (One
    // invocation goes on from chunk to chunk while its time lasts, so chunks cannot be told apart.)
    const first = await scoreAll();
    const warmJob = await scoreAll();
    const wallSeconds = (performance.now() - wallStart) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    const warmPerSecond = (cells.length * copies) / warmJob.seconds;
    const warmPerCpuSecond = (cells.length * copies) / warmJob.cpuSeconds;

    const { network, card: loadedCard, onnx } = await services.models.load(card.version);
    const limits = imageLimits(config.limits, config.limits.uploadBytes);
    const computeStart = performance.now();
    const computeCpu = process.cpuUsage();
    for (const cell of cells) {
      const image = await decodeImage(cell.bytes, limits);
      await analyzeCell(network, loadedCard, image, { explain: false, onnx });
    }
    const computePerSecond = cells.length / ((performance.now() - computeStart) / 1000);
    const computeUsed = process.cpuUsage(computeCpu);
    const computePerCpuSecond = cells.length / ((computeUsed.user + computeUsed.system) / 1e6);

    const figures = {
      data: `data/cnmc-sample: ${cells.length} real C-NMC cells x ${copies} copies, 450x450 BMP`,
      model: `${card.version} demo model: ${card.architecture} ${card.inputSize}px, TTA ${card.testTimeAugmentation ? 'on' : 'off'}`,
      runtime: onnx ? 'onnxruntime, 1 thread' : `tfjs ${runtime}`,
      cells: cells.length * copies,
      firstJobSeconds: Number(first.seconds.toFixed(2)),
      warmJobImagesPerCpuSecond: Number(warmPerCpuSecond.toFixed(1)),
      computeImagesPerCpuSecond: Number(computePerCpuSecond.toFixed(1)),
      warmJobImagesPerSecond: Number(warmPerSecond.toFixed(1)),
      computeImagesPerSecond: Number(computePerSecond.toFixed(1)),
      firstJobCpuSeconds: Number(first.cpuSeconds.toFixed(2)),
      wallSeconds: Number(wallSeconds.toFixed(2)),
      cpuPerWall: Number(((cpu.user + cpu.system) / 1e6 / wallSeconds).toFixed(2)),
      loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    };
    console.log('bulk scoring, one core');
    console.table({
      'real worker, warm job (img per CPU-s)': figures.warmJobImagesPerCpuSecond,
      'decode + analyzeCell only (img per CPU-s)': figures.computeImagesPerCpuSecond,
      'real worker, warm job (img/s wall)': figures.warmJobImagesPerSecond,
      'decode + analyzeCell only (img/s wall)': figures.computeImagesPerSecond,
      'first job, model load included (CPU-s)': figures.firstJobCpuSeconds,
      'process CPU / wall': figures.cpuPerWall,
    });
    console.log(JSON.stringify(figures));
  } finally {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
