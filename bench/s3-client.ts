/**
 * `npx tsx bench/s3-client.ts [requests]`: what one S3 request costs the API's process in CPU, three ways:
 * through the store on the AWS SDK v3 client (S3ObjectStore with `requests: 'sdk'`, as before
 * s3-requests.ts), through the store as the services now build it (GET, PUT and HEAD without the SDK's
 * client: src/storage/s3-requests.ts), and, as the floor, through the same SigV4 signer and node:http with
 * a keep-alive agent and nothing else. The local S3 server runs in a child process, so the CPU counted
 * (process.cpuUsage) is the client's alone. Each round runs the three back to back, rotating which goes
 * first, after all have warmed up. Data: one small JSON object (an API key record's size) and the real
 * C-NMC cell data/cnmc-sample/all/UID_11_1_1_all.bmp (600 KB) as the uploaded body. A prediction makes
 * 2 GETs and 4 or 5 PUTs, so the difference per request, times 7, is what a client adds to each prediction.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { LOCAL_S3_REGION, startLocalS3 } from '../src/local/s3-server';
import { createServices } from '../src/services';
import type { ObjectStore } from '../src/storage/object-store';
import { createS3ObjectStore } from '../src/storage/s3-object-store';
import { s3Signer } from '../src/storage/s3-signer';
import { median, round } from './stats';

const BUCKET = 'lymphoscope-bench';
const ROUNDS = 6;
/** Requests of each kind, both sides, before any is timed. */
const WARM_UP = 300;

interface Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

async function child(): Promise<void> {
  const s3 = await startLocalS3({
    directory: mkdtempSync(path.join(tmpdir(), 'lymphoscope-s3-client-')),
    bucket: BUCKET,
    port: 0,
  });
  process.stdout.write(JSON.stringify({ endpoint: s3.endpoint, ...s3.credentials }) + '\n');
}

/** The floor: one SigV4-signed request over a keep-alive agent, the body hashed as the SDK does. */
function rawClient(server: Server) {
  const url = new URL(server.endpoint);
  const signer = s3Signer(
    { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    LOCAL_S3_REGION,
  );
  const agent = new http.Agent({ keepAlive: true });
  return async (method: 'GET' | 'PUT', key: string, body?: Buffer): Promise<Buffer> => {
    const requestPath = `/${BUCKET}/${key}`;
    const payloadHash = createHash('sha256')
      .update(body ?? '')
      .digest('hex');
    const signed = await signer.sign({
      method,
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: requestPath,
      query: {},
      headers: {
        host: url.host,
        'x-amz-content-sha256': payloadHash,
        ...(body
          ? { 'content-length': String(body.length), 'content-type': 'application/octet-stream' }
          : {}),
      },
    });
    return new Promise((resolve, reject) => {
      const request = http.request(
        { host: url.hostname, port: url.port, path: requestPath, method, headers: signed.headers, agent },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            response.statusCode === 200
              ? resolve(Buffer.concat(chunks))
              : reject(new Error(`${method} ${key}: HTTP ${response.statusCode}`)),
          );
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  };
}

/** Wall and CPU milliseconds per call of `run`, the mean over `n` calls after 30 more warm-up calls. */
async function cost(n: number, run: (i: number) => Promise<unknown>) {
  for (let i = 0; i < 30; i++) await run(i);
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < n; i++) await run(i);
  const used = process.cpuUsage(cpu);
  return { wallMs: (performance.now() - started) / n, cpuMs: (used.user + used.system) / 1000 / n };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child();
  const requests = Number(process.argv[2] ?? 200);
  const server = spawn(process.execPath, [...process.execArgv, __filename, '--child'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const info = await new Promise<Server>((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (chunk) => {
        out += chunk;
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve(JSON.parse(line));
      });
      server.on('exit', (code) => reject(new Error(`local S3 child exited ${code}`)));
    });
    process.env.AWS_ACCESS_KEY_ID = info.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = info.secretAccessKey;
    const { store } = createServices(
      loadConfig({
        LYMPHOSCOPE_STAGE: 'test',
        LYMPHOSCOPE_BUCKET: BUCKET,
        LYMPHOSCOPE_S3_ENDPOINT: info.endpoint,
        LYMPHOSCOPE_LOG_LEVEL: 'warn',
      }),
    );
    const raw = rawClient(info);
    const small = Buffer.from(
      JSON.stringify({ keyId: 'bench', role: 'SCIENTIST', partnerId: 'p'.repeat(120) }),
    );
    const image = readFileSync(
      path.join(__dirname, '..', 'data', 'cnmc-sample', 'all', 'UID_11_1_1_all.bmp'),
    );
    await store.put('bench/small.json', small, { contentType: 'application/json' });
    const viaSdk = createS3ObjectStore({
      bucket: BUCKET,
      region: LOCAL_S3_REGION,
      endpoint: info.endpoint,
      requests: 'sdk',
    });
    type Side = (i: number) => Promise<unknown>;
    const sides = (of: (s: ObjectStore) => Side, floor: Side): Record<string, Side> => ({
      sdk: of(viaSdk),
      direct: of(store),
      floor,
    });
    const cases = [
      {
        what: 'GET of a small object',
        run: sides(
          (s) => () => s.get('bench/small.json'),
          () => raw('GET', 'bench/small.json'),
        ),
      },
      {
        what: 'PUT of a small object',
        run: sides(
          (s) => (i) => s.put(`bench/s${i % 8}.json`, small, { contentType: 'application/json' }),
          (i) => raw('PUT', `bench/r${i % 8}.json`, small),
        ),
      },
      {
        what: 'PUT of a 600 KB cell',
        run: sides(
          (s) => (i) => s.put(`bench/c${i % 8}.bmp`, image, { contentType: 'image/bmp' }),
          (i) => raw('PUT', `bench/q${i % 8}.bmp`, image),
        ),
      },
    ];
    const rows = [];
    for (const c of cases) {
      const names = Object.keys(c.run);
      const costs: Record<string, Array<{ wallMs: number; cpuMs: number }>> = {};
      names.forEach((n) => (costs[n] = []));
      // V8 keeps speeding the process up for a while: all sides warm first, then rotate which goes first.
      for (let i = 0; i < WARM_UP; i++) await Promise.all(names.map((n) => c.run[n](i)));
      for (let r = 0; r < ROUNDS; r++) {
        for (let k = 0; k < names.length; k++) {
          const n = names[(r + k) % names.length];
          costs[n].push(await cost(requests, c.run[n]));
        }
      }
      const m = (n: string, k: 'wallMs' | 'cpuMs') => round(median(costs[n].map((x) => x[k])));
      rows.push({
        request: c.what,
        sdkCpuMs: m('sdk', 'cpuMs'),
        directCpuMs: m('direct', 'cpuMs'),
        floorCpuMs: m('floor', 'cpuMs'),
        directVsSdk: round(m('direct', 'cpuMs') / m('sdk', 'cpuMs')),
        sdkWallMs: m('sdk', 'wallMs'),
        directWallMs: m('direct', 'wallMs'),
        floorWallMs: m('floor', 'wallMs'),
      });
    }
    process.stdout.write(
      `One S3 request's cost to the client process (median of ${ROUNDS} rounds of ${requests} requests; ` +
        `local S3 in a child process; sdk = the store on the AWS SDK's client, direct = the store as the ` +
        `services build it (s3-requests.ts), floor = SigV4 + node:http):\n`,
    );
    console.table(rows);
  } finally {
    server.kill();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
