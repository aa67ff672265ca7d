import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalStack } from '../src/local/stack';
import { percentile, round } from './stats';

const PREDICT =
  'mutation($input: PredictInput!) { predict(input: $input) { id label probabilityAll needsReview reviewReasons heatmapUrl } }';

/**
 * One share of a predict request's time, from the client's clock and the handler's JSON log lines
 * (`graphql` and `prediction`, written by the handler during that request). Means, so the shares add up
 * to the round trip; `p50Ms` beside them for the reader.
 */
export interface EndToEndShare {
  share: string;
  meanMs: number;
  p50Ms: number;
}

export interface EndToEndResult {
  rows: EndToEndRow[];
  breakdown: EndToEndShare[];
}

interface LogLine {
  message?: string;
  ms?: number;
  [field: string]: unknown;
}

/**
 * The stack's JSON log lines while `run` runs, kept off the terminal. Powertools writes them to
 * process.stdout, one object per line; anything else written meanwhile passes through.
 */
async function capturingLog<T>(run: (lines: LogLine[]) => Promise<T>): Promise<T> {
  const lines: LogLine[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (!text.startsWith('{"level"'))
      return (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
    for (const line of text.split('\n')) if (line) lines.push(JSON.parse(line) as LogLine);
    const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof process.stdout.write;
  try {
    return await run(lines);
  } finally {
    process.stdout.write = write;
  }
}

/** The analysis stages of the `prediction` log line (PredictionService), in pipeline order. */
const ANALYSIS_STAGES = ['resizeMs', 'predictMs', 'morphologyMs', 'heatmapMs', 'outOfDomainMs'] as const;

/**
 * Splits each predict request's round trip by the log lines it wrote: outside Apollo's operation (the
 * client's JSON and HTTP, the local API building the Lambda event, the handler's middleware, the answer's
 * way back), Apollo's operation outside the service (the API key's GET, which the first resolver to ask
 * for the caller triggers, parse, validate, base64 decode, header check, the heat map's presigned URL),
 * and the service's own stages.
 */
function breakdownOf(requests: Array<{ roundTripMs: number; lines: LogLine[] }>): EndToEndShare[] {
  const shares = new Map<string, number[]>();
  const add = (share: string, ms: number) => {
    if (!shares.has(share)) shares.set(share, []);
    shares.get(share)!.push(ms);
  };
  for (const { roundTripMs, lines } of requests) {
    const operation = lines.find((l) => l.message === 'graphql');
    const prediction = lines.find((l) => l.message === 'prediction');
    if (!operation || !prediction) throw new Error('a predict request logged no graphql or prediction line');
    const field = (name: string) => Number(prediction[name] ?? 0);
    add('round trip, as the client sees it', roundTripMs);
    add(
      'outside Apollo: client JSON + HTTP, local API, Lambda event, middleware, answer',
      roundTripMs - operation.ms!,
    );
    add(
      'Apollo outside the service: API key GET, parse, validate, base64, header, heat-map URL',
      operation.ms! - prediction.ms!,
    );
    add('service: production alias GET + model cache, what is left after the decode', field('lookupMs'));
    add('service: decode', field('decodeMs'));
    let stages = 0;
    for (const stage of ANALYSIS_STAGES) {
      add(`analysis: ${stage.replace(/Ms$/, '')}`, field(stage));
      stages += field(stage);
    }
    add('service: S3 writes (image, heat map, owner | record + review marker)', field('storeMs'));
    add(
      'service: the rest (record, morphology comparisons, overlaps)',
      prediction.ms! - field('lookupMs') - field('decodeMs') - stages - field('storeMs'),
    );
  }
  return [...shares].map(([share, ms]) => ({
    share,
    meanMs: round(ms.reduce((a, b) => a + b, 0) / ms.length),
    p50Ms: round(percentile(ms, 50)),
  }));
}

export interface EndToEndRow {
  what: string;
  requests: number;
  p50Ms: number;
  p90Ms: number;
  /**
   * CPU time of this process per request (user + system, every thread): the handler's, but also the HTTP
   * client's and the local S3 server's (on a worker thread of this process), so an upper bound on the API's.
   */
  cpuMsPerRequest: number;
}

/**
 * One request at a time through the local stack, over HTTP to the real Lambda handler and the local S3
 * server, as a partner sees it: `predict` with a base64 BMP (decode, 8-view prediction, Grad-CAM heat map,
 * morphology, out-of-domain score, the image, heat map and records stored), then `health`. The stack runs
 * in this process (its S3 server on a worker thread), so the client's and the servers' CPU are the same 2
 * cores. The bundled demo model is
 * the production model of a fresh local stack.
 */
export async function benchEndToEnd(cells: Buffer[], passes: number): Promise<EndToEndResult> {
  return capturingLog((lines) => endToEnd(cells, passes, lines));
}

async function endToEnd(cells: Buffer[], passes: number, lines: LogLine[]): Promise<EndToEndResult> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-bench-e2e-'));
  const stack = await startLocalStack({
    dataDir,
    adminKey: 'lsk_bench_end_to_end_admin_key_0123456789',
    // Info, as on Lambda: the handler's log lines give the breakdown (capturingLog keeps them off screen).
    logLevel: 'info',
    host: '127.0.0.1',
    env: { LYMPHOSCOPE_KEY_RATE_PER_MINUTE: '1000000', LYMPHOSCOPE_KEY_BURST: '100000' },
  });
  try {
    if (!stack.productionModelVersion) throw new Error('the local stack installed no demo model');
    const partner = await stack.services.auth.create(
      { keyId: 'bench', role: 'ADMIN', partnerId: 'bench' },
      'bench partner',
      'PARTNER',
    );
    const post = async (query: string, variables?: unknown) => {
      const started = performance.now();
      const response = await fetch(stack.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': partner.secret },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { errors?: unknown[] };
      if (body.errors?.length) throw new Error(`request failed: ${JSON.stringify(body.errors)}`);
      return performance.now() - started;
    };
    const encoded = cells.map((c) => c.toString('base64'));
    // Warm-up: the first request loads the model into the API's registry (cold start is measured apart).
    for (const imageBase64 of encoded.slice(0, 4)) await post(PREDICT, { input: { imageBase64 } });
    const cpuMs = (since: NodeJS.CpuUsage) => {
      const used = process.cpuUsage(since);
      return (used.user + used.system) / 1000;
    };
    const predict: number[] = [];
    const requests: Array<{ roundTripMs: number; lines: LogLine[] }> = [];
    let cpu = process.cpuUsage();
    for (let pass = 0; pass < passes; pass++)
      for (const imageBase64 of encoded) {
        lines.length = 0;
        const roundTripMs = await post(PREDICT, { input: { imageBase64 } });
        predict.push(roundTripMs);
        requests.push({ roundTripMs, lines: [...lines] });
      }
    const predictCpuMs = cpuMs(cpu);
    const health: number[] = [];
    cpu = process.cpuUsage();
    for (let i = 0; i < 50; i++) health.push(await post('{ health { status storageReachable } }'));
    const healthCpuMs = cpuMs(cpu);
    const row = (what: string, ms: number[], cpuTotalMs: number): EndToEndRow => ({
      what,
      requests: ms.length,
      p50Ms: round(percentile(ms, 50)),
      p90Ms: round(percentile(ms, 90)),
      cpuMsPerRequest: round(cpuTotalMs / ms.length),
    });
    return {
      rows: [
        row('predict, one at a time, heat map on', predict, predictCpuMs),
        row('health', health, healthCpuMs),
      ],
      breakdown: breakdownOf(requests),
    };
  } finally {
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
