/**
 * `npm run load`: a bounded load test of the predict path on 127.0.0.1. Starts the local stack in this
 * process (so the API's TensorFlow.js engine can be read directly), sends real C-NMC sample cells as
 * `predict` requests through the deployed Lambda handler over HTTP, and prints the error count,
 * latency percentiles, throughput, live tensors and memory before and after each round.
 *
 *   npm run load -- --requests 200 --concurrency 200,200,8 --explain true --deadline-s 300
 *
 * Each entry of --concurrency is one round of --requests predictions with that many in flight: by
 * default two rounds of 200 at once (latency is mostly queueing; the second round shows whether tensors
 * and memory stay flat), then 200 through a pool of 8 clients (latency closer to the service time).
 *
 * A script with printed figures, not a test: speed is measured here, never asserted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance as nodePerformance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseArgs } from 'node:util';
import { liveTensors } from '../src/ml/runtime';
import { runtimeInfo } from '../src/ml/runtime-info';
import { startLocalStack, type LocalStack } from '../src/local/stack';
import { sampleImages } from '../test/helpers/sample';
import { registerUntrainedModel } from '../test/helpers/untrained-model';

const loopUtilisation = nodePerformance.eventLoopUtilization.bind(nodePerformance);

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '200,200,8' },
    explain: { type: 'string', default: 'true' },
    'deadline-s': { type: 'string', default: '300' },
  },
});
const REQUESTS = positive('requests');
const CONCURRENCY = String(args.concurrency)
  .split(',')
  .map((c) => {
    const n = Number(c);
    if (!Number.isInteger(n) || n < 1)
      throw new Error('--concurrency takes positive integers, e.g. 200,200,8');
    return n;
  });
const ROUNDS = CONCURRENCY.length;
const DEADLINE_MS = positive('deadline-s') * 1000;
const EXPLAIN = args.explain !== 'false';

function positive(name: keyof typeof args): number {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

// A forced collection before each memory reading, so "after" compares live memory, not garbage.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const PREDICT =
  'mutation($input: PredictInput!) { predict(input: $input) { id label probabilityAll needsReview heatmapUrl } }';

interface Sample {
  ok: boolean;
  code: string | null;
  ms: number;
}

async function predictOnce(
  url: string,
  key: string,
  imageBase64: string,
  signal: AbortSignal,
): Promise<Sample> {
  const started = performance.now();
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify({ query: PREDICT, variables: { input: { imageBase64, explain: EXPLAIN } } }),
      signal,
    });
    const body = (await response.json()) as {
      data?: { predict?: { probabilityAll: number } };
      errors?: Array<{ extensions?: { code?: string } }>;
    };
    const ms = performance.now() - started;
    const p = body.data?.predict?.probabilityAll;
    if (body.errors?.length || typeof p !== 'number' || p < 0 || p > 1) {
      return { ok: false, code: body.errors?.[0]?.extensions?.code ?? `HTTP_${response.status}`, ms };
    }
    return { ok: true, code: null, ms };
  } catch (error) {
    const name = (error as Error).name;
    return {
      ok: false,
      code: name === 'TimeoutError' || name === 'AbortError' ? 'DEADLINE' : 'NETWORK',
      ms: performance.now() - started,
    };
  }
}

/** `requests` predictions with at most `concurrency` in flight, all abandoned at the deadline. */
async function round(
  url: string,
  key: string,
  cells: string[],
  requests: number,
  concurrency: number,
): Promise<{ samples: Sample[]; wallMs: number }> {
  const signal = AbortSignal.timeout(DEADLINE_MS);
  const samples: Sample[] = [];
  let next = 0;
  const started = performance.now();
  const client = async () => {
    while (next < requests) {
      const i = next++;
      samples.push(await predictOnce(url, key, cells[i % cells.length], signal));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests) }, client));
  return { samples, wallMs: performance.now() - started };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function memory() {
  gc();
  const m = process.memoryUsage();
  return {
    tensors: liveTensors(),
    rssMb: m.rss / 2 ** 20,
    heapUsedMb: m.heapUsed / 2 ** 20,
    externalMb: m.external / 2 ** 20,
  };
}

/** The demo model when the stack installed it; otherwise an untrained LymphoNet of the same shape. */
async function ensureProductionModel(stack: LocalStack): Promise<string> {
  if (stack.productionModelVersion) return `${stack.productionModelVersion} (bundled demo model)`;
  const card = await registerUntrainedModel(stack.services, {
    architecture: 'lymphonet',
    inputSize: 96,
    seed: 1,
    reviewLow: 0.4,
    reviewHigh: 0.6,
    notes: 'untrained: registered by bench/load.ts because no demo model was found',
  });
  await stack.services.models.promote(
    { keyId: 'bench', role: 'ADMIN', partnerId: 'bench' },
    card.version,
    null,
  );
  return `${card.version} (untrained lymphonet 96: no demo model found)`;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-load-'));
  const adminKey = 'lsk_load_test_admin_key_0123456789abcdef';
  const stack = await startLocalStack({
    dataDir,
    adminKey,
    logLevel: 'warn',
    host: '127.0.0.1',
    // One key sends every request, hundreds at once: lift its rate limits (docs/SECURITY.md) so the
    // figures measure the predict path, not the limiter. Requests in flight stay at the default 4, which
    // the local server's 4 invocation slots never exceed.
    env: { LYMPHOSCOPE_KEY_RATE_PER_MINUTE: '1000000', LYMPHOSCOPE_KEY_BURST: '100000' },
  });
  try {
    const modelDescription = await ensureProductionModel(stack);
    const partner = await stack.services.auth.create(
      { keyId: 'bench', role: 'ADMIN', partnerId: 'bench' },
      'load test partner',
      'PARTNER',
    );
    const images = sampleImages();
    const cells = images.map((i) => i.bytes.toString('base64'));

    // Warm-up: the first request loads the model into the API's registry; keep it out of the figures.
    const WARM_UP = 8;
    const warm = await round(stack.url, partner.secret, cells, WARM_UP, 4);
    if (warm.samples.some((s) => !s.ok)) throw new Error(`warm-up failed: ${JSON.stringify(warm.samples)}`);
    const before = memory();
    const header = {
      data: `real C-NMC sample cells from data/cnmc-sample (${images.length} BMPs, 450x450, ${images.filter((i) => i.label === 'ALL').length} ALL / ${images.filter((i) => i.label === 'NORMAL').length} normal), sent as base64`,
      model: modelDescription,
      backend: runtimeInfo()?.backend,
      requests: REQUESTS,
      concurrency: CONCURRENCY,
      explain: EXPLAIN,
      deadlineS: DEADLINE_MS / 1000,
      cpus: os.cpus().length,
      node: process.version,
    };
    process.stdout.write(`${JSON.stringify({ load: 'start', ...header })}\n`);

    let totalErrors = 0;
    for (const [index, concurrency] of CONCURRENCY.entries()) {
      const r = index + 1;
      // Where the time beyond one request's goes: the API and this client share one event loop (the local
      // S3 server has a worker thread of its own), so its utilisation near 1 means the requests queue for
      // that loop (and for the handler's invocation slots), not for the cores; CPU per request is this
      // process's, every thread, the S3 server's included.
      const loopBefore = loopUtilisation();
      const cpuBefore = process.cpuUsage();
      const { samples, wallMs } = await round(stack.url, partner.secret, cells, REQUESTS, concurrency);
      const loop = loopUtilisation(loopBefore);
      const cpu = process.cpuUsage(cpuBefore);
      const after = memory();
      const latencies = samples
        .filter((s) => s.ok)
        .map((s) => s.ms)
        .sort((a, b) => a - b);
      const errors: Record<string, number> = {};
      for (const s of samples.filter((x) => !x.ok)) errors[s.code!] = (errors[s.code!] ?? 0) + 1;
      const errorCount = samples.length - latencies.length + (REQUESTS - samples.length);
      totalErrors += errorCount;
      const figures = {
        load: 'round',
        round: r,
        requests: REQUESTS,
        concurrency,
        completed: samples.length,
        errors: errorCount,
        errorCodes: errors,
        p50Ms: Math.round(percentile(latencies, 50)),
        p90Ms: Math.round(percentile(latencies, 90)),
        p99Ms: Math.round(percentile(latencies, 99)),
        maxMs: Math.round(latencies[latencies.length - 1] ?? NaN),
        wallS: Number((wallMs / 1000).toFixed(2)),
        throughputPerS: Number(((latencies.length / wallMs) * 1000).toFixed(2)),
        // Little's law: with `concurrency` always in flight, latency = concurrency / throughput.
        littleP50Ms: Math.round((concurrency * wallMs) / Math.max(1, latencies.length)),
        eventLoopUtilisation: Number(loop.utilization.toFixed(2)),
        cpuMsPerRequest: Math.round((cpu.user + cpu.system) / 1000 / Math.max(1, samples.length)),
        loadAverage: os.loadavg().map((l) => Number(l.toFixed(1))),
        liveTensorsBefore: before.tensors,
        liveTensorsAfter: after.tensors,
        rssMbBefore: Math.round(before.rssMb),
        rssMbAfter: Math.round(after.rssMb),
        heapUsedMbBefore: Math.round(before.heapUsedMb),
        heapUsedMbAfter: Math.round(after.heapUsedMb),
      };
      process.stdout.write(`${JSON.stringify(figures)}\n`);
      process.stdout.write(
        `round ${r}: ${REQUESTS} predictions, ${concurrency} in flight, ${errorCount} errors; p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms; ` +
          `${figures.throughputPerS} predictions/s (concurrency / throughput ${figures.littleP50Ms} ms); ` +
          `event loop busy ${figures.eventLoopUtilisation}, ${figures.cpuMsPerRequest} CPU ms per request, ` +
          `load average ${figures.loadAverage[0]}; live tensors ${before.tensors} -> ${after.tensors}; ` +
          `RSS ${figures.rssMbBefore} -> ${figures.rssMbAfter} MB\n`,
      );
    }
    const stored = (await stack.services.store.listAll('predictions/')).filter((o) =>
      /\/[0-9a-z]{26}\.json$/.test(o.key),
    ).length;
    process.stdout.write(
      `${JSON.stringify({ load: 'done', totalErrors, predictionRecordsInS3: stored, expected: WARM_UP + ROUNDS * REQUESTS })}\n`,
    );
    if (totalErrors > 0 || memory().tensors !== before.tensors) process.exitCode = 1;
  } finally {
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`load test failed: ${error?.stack ?? error}\n`);
  process.exit(1);
});
