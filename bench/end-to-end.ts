import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalStack } from '../src/local/stack';
import { percentile, round } from './stats';

const PREDICT =
  'mutation($input: PredictInput!) { predict(input: $input) { id label probabilityAll needsReview reviewReasons heatmapUrl } }';

export interface EndToEndRow {
  what: string;
  requests: number;
  p50Ms: number;
  p90Ms: number;
  /**
   * CPU time of this process per request (user + system, every thread): the handler's, but also the HTTP
   * client's and the local S3 server's, which run in the same process, so an upper bound on the API's.
   */
  cpuMsPerRequest: number;
}

/**
 * One request at a time through the local stack, over HTTP to the real Lambda handler and the local S3
 * server, as a partner sees it: `predict` with a base64 BMP (decode, 8-view prediction, Grad-CAM heat map,
 * morphology, out-of-domain score, the image, heat map and records stored), then `health`. The stack runs
 * in this process, so the client's and the server's CPU are the same 2 cores. The bundled demo model is
 * the production model of a fresh local stack.
 */
export async function benchEndToEnd(cells: Buffer[], passes: number): Promise<EndToEndRow[]> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-bench-e2e-'));
  const stack = await startLocalStack({
    dataDir,
    adminKey: 'lsk_bench_end_to_end_admin_key_0123456789',
    logLevel: 'warn',
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
    let cpu = process.cpuUsage();
    for (let pass = 0; pass < passes; pass++)
      for (const imageBase64 of encoded) predict.push(await post(PREDICT, { input: { imageBase64 } }));
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
    return [
      row('predict, one at a time, heat map on', predict, predictCpuMs),
      row('health', health, healthCpuMs),
    ];
  } finally {
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
