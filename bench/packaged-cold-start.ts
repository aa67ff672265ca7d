/**
 * `npm run bench:packaged-cold-start`: the cold start of the deployable artifact. The graphql zip that
 * `serverless package` makes is unpacked as Lambda would, and a fresh Node 22 process (Lambda's
 * nodejs22.x major) requires the handler and answers its first `predict` of a real C-NMC cell
 * (data/cnmc-sample/all/UID_11_1_1_all.bmp) with the production model read from a local S3 server
 * (the demo model, data/demo-model, trained on the 63 C-NMC sample cells). Goal: require to first
 * prediction <= 1 s. Beside it, measured in the same run on the same machine: a bare Node 22 start
 * and the same handler's second (warm) prediction, so the figure can be read against the machine.
 * BENCH_NODE_OPTIONS reaches the measured processes as NODE_OPTIONS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"
 * for a profile of the cold start.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config';
import { LOCAL_S3_REGION, startLocalS3 } from '../src/local/s3-server';
import { installDemoModel } from '../src/local/stack';
import { createServices } from '../src/services';
import { median, round } from './stats';
import { modelArtifacts } from '../src/services/model-artifacts';
import { lambdaNode } from '../test/helpers/lambda-node';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
/** Another zip (LYMPHOSCOPE_BENCH_ZIP) measures a packaging variant on the same machine; else this tree's. */
const ZIP = process.env.LYMPHOSCOPE_BENCH_ZIP ?? path.join(ROOT, '.serverless', 'graphql.zip');
/**
 * A baseline zip (LYMPHOSCOPE_BENCH_BASELINE_ZIP, e.g. an earlier commit's graphql.zip) is measured in the
 * same run, each round running it and ZIP back to back, and the figures are printed as ratios to it.
 */
const BASELINE_ZIP = process.env.LYMPHOSCOPE_BENCH_BASELINE_ZIP;
const IMAGE = path.join(ROOT, 'data', 'cnmc-sample', 'all', 'UID_11_1_1_all.bmp');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const GOAL_MS = 1000;

/** Runs `args` with `node`, returning its last stdout line as JSON and the spawn-to-exit time. */
function timed(node: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  return new Promise<{ wallMs: number; report: Record<string, number>; logs: LogLine[] }>(
    (resolve, reject) => {
      const started = performance.now();
      const child = spawn(node, args, { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (chunk) => (out += chunk));
      child.on('error', reject);
      child.on('exit', (code) => {
        const wallMs = performance.now() - started;
        if (code !== 0) return reject(new Error(`exit ${code}: ${out}`));
        const lines = out.trim().split('\n');
        const logs = lines.slice(0, -1).flatMap((line) => {
          try {
            return [JSON.parse(line) as LogLine];
          } catch {
            return [];
          }
        });
        resolve({ wallMs, report: JSON.parse(lines[lines.length - 1]), logs });
      });
    },
  );
}

interface LogLine {
  message?: string;
  [field: string]: unknown;
}

/**
 * Where the first prediction's time went after the require, from the handler's own `prediction` log line
 * (PredictionService): what is left of the model's load once the image is decoded (alias GET, card, weights,
 * ONNX session, and TF.js with its model for a version onnxruntime does not run whole: `lookupMs`), the
 * analysis' stages and the writes; the rest is the API key's GET, Apollo and decode.
 */
function firstPrediction(logs: LogLine[]): Record<string, number> {
  const line = logs.find((l) => l.message === 'prediction');
  if (!line) return {};
  const n = (k: string) => Number(line[k] ?? 0);
  return {
    modelLoadMs: n('lookupMs'),
    analysisMs: n('resizeMs') + n('predictMs') + n('morphologyMs') + n('heatmapMs') + n('outOfDomainMs'),
    storeMs: n('storeMs'),
    serviceMs: n('ms'),
  };
}

async function main(): Promise<void> {
  // This tree is packaged on every run: a zip left from an earlier commit would be measured as this one.
  if (!process.env.LYMPHOSCOPE_BENCH_ZIP || !existsSync(ZIP)) {
    process.stderr.write('Packaging this tree (npx serverless package --stage test)...\n');
    await run('npx', ['serverless', 'package', '--stage', 'test'], { cwd: ROOT, maxBuffer: 16 << 20 });
  }
  const variants = [
    { name: 'this', zip: ZIP },
    ...(BASELINE_ZIP ? [{ name: 'baseline', zip: BASELINE_ZIP }] : []),
  ];
  const dirs = await Promise.all(variants.map(() => mkdtemp(path.join(os.tmpdir(), 'lymphoscope-cold-'))));
  const s3Dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-cold-s3-'));
  const bucket = 'lymphoscope-bench';
  const s3 = await startLocalS3({ directory: s3Dir, bucket, port: 0 });
  try {
    for (const [i, v] of variants.entries()) await run('unzip', ['-q', v.zip, '-d', dirs[i]]);
    // The local S3 refuses unsigned requests; the SDK's default chain reads the keys from the environment.
    process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
    process.env.AWS_REGION ??= LOCAL_S3_REGION;
    const services = createServices(
      loadConfig({
        LYMPHOSCOPE_STAGE: 'test',
        LYMPHOSCOPE_BUCKET: bucket,
        LYMPHOSCOPE_S3_ENDPOINT: s3.endpoint,
        LYMPHOSCOPE_LOG_LEVEL: 'warn',
      }),
      { registration: modelArtifacts },
    );
    const model = await installDemoModel(services);
    if (!model) throw new Error('No demo model in data/demo-model (npm run demo-model).');
    const { secret } = await services.auth.create(
      { keyId: 'bench', role: 'ADMIN', partnerId: 'bench' },
      'cold start bench',
      'SCIENTIST',
    );
    const body = JSON.stringify({
      query: 'mutation($i: PredictInput!) { predict(input: $i) { label probabilityAll modelVersion } }',
      variables: { i: { imageBase64: (await readFile(IMAGE)).toString('base64') } },
    });
    const event = {
      version: '2.0',
      routeKey: 'POST /graphql',
      rawPath: '/graphql',
      rawQueryString: '',
      headers: { 'content-type': 'application/json', 'x-api-key': secret },
      requestContext: { http: { method: 'POST', path: '/graphql' }, requestId: 'bench' },
      body,
      isBase64Encoded: false,
    };
    const script = `
      const started = performance.now();
      const { handler } = require('./src/handlers/graphql.js');
      const required = performance.now();
      const context = { awsRequestId: 'bench', getRemainingTimeInMillis: () => 29000 };
      const event = ${JSON.stringify(event)};
      (async () => {
        const first = await handler(event, context);
        const answered = performance.now();
        if (first.statusCode !== 200 || JSON.parse(first.body).errors) throw new Error(first.body);
        await handler(event, context);
        const warm = performance.now() - answered;
        console.log(JSON.stringify({ requireMs: required - started, firstPredictionMs: answered - started, warmPredictionMs: warm }));
        process.exit(0);
      })().catch((e) => { console.error(e); process.exit(1); });
      `;
    for (const dir of dirs) await writeFile(path.join(dir, 'cold-start-bench.cjs'), script);
    const node = await lambdaNode();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      AWS_REGION: LOCAL_S3_REGION,
      AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
      LYMPHOSCOPE_STAGE: 'test',
      LYMPHOSCOPE_BUCKET: bucket,
      LYMPHOSCOPE_S3_ENDPOINT: s3.endpoint,
      // Info: the handler's prediction line splits the first prediction (firstPrediction).
      LYMPHOSCOPE_LOG_LEVEL: 'info',
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
    };
    const envOf = (dir: string) => ({
      ...env,
      LYMPHOSCOPE_WASM_DIR: path.join(dir, 'node_modules/@tensorflow/tfjs-backend-wasm/dist'),
    });
    const bare: number[] = [];
    const cold = variants.map(() => [] as Array<Record<string, number> & { wallMs: number }>);
    for (let i = 0; i < RUNS; i++) {
      bare.push((await timed(node, ['-e', 'console.log("{}")'], dirs[0], env)).wallMs);
      for (const [v, dir] of dirs.entries()) {
        const { wallMs, report, logs } = await timed(node, ['cold-start-bench.cjs'], dir, envOf(dir));
        cold[v].push({ ...report, ...firstPrediction(logs), wallMs });
      }
    }
    const version = (await run(node, ['-p', 'process.version'])).stdout.trim();
    const rows: Array<Awaited<ReturnType<typeof summary>>> = [];
    for (const [v, variant] of variants.entries()) {
      const row = await summary(variant.name, dirs[v], cold[v], version, round(median(bare)));
      rows.push(row);
      process.stdout.write(describe(row));
    }
    if (rows.length === 2) {
      const ratio = (k: keyof (typeof rows)[number]) => round(Number(rows[0][k]) / Number(rows[1][k]));
      process.stdout.write(
        `  this / baseline, same run: require to first prediction ${ratio('requireToFirstPredictionMs')}x, ` +
          `require ${ratio('requireHandlerMs')}x, bundle ${ratio('bundleMb')}x, service ${ratio('firstServiceMs')}x\n`,
      );
    }
    for (const row of rows) process.stdout.write(JSON.stringify(row) + '\n');
  } finally {
    await s3.stop();
    await Promise.all([...dirs, s3Dir].map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

async function summary(
  variant: string,
  dir: string,
  cold: Array<Record<string, number> & { wallMs: number }>,
  node: string,
  bareNodeStartMs: number,
) {
  const pick = (k: string) => round(median(cold.map((c) => c[k])));
  const bundleBytes = (await stat(path.join(dir, 'src/handlers/graphql.js'))).size;
  // TF.js beside the bundle (deploy/esbuild-plugins.js), read only where TF.js serves; 0 in older zips.
  const besideBytes = await stat(path.join(dir, 'src/handlers/graphql.tfjs.js')).then(
    (s) => s.size,
    () => 0,
  );
  return {
    variant,
    node,
    runs: RUNS,
    bundleMb: round(bundleBytes / 1e6),
    tfjsBesideMb: round(besideBytes / 1e6),
    bareNodeStartMs,
    requireHandlerMs: pick('requireMs'),
    requireToFirstPredictionMs: pick('firstPredictionMs'),
    spawnToFirstPredictionExitMs: pick('wallMs'),
    warmPredictionMs: pick('warmPredictionMs'),
    firstModelLoadMs: pick('modelLoadMs'),
    firstAnalysisMs: pick('analysisMs'),
    firstStoreMs: pick('storeMs'),
    firstServiceMs: pick('serviceMs'),
    goalMs: GOAL_MS,
  };
}

function describe(row: Awaited<ReturnType<typeof summary>>): string {
  return (
    `Packaged graphql handler cold start, ${row.variant} zip (${row.node}, median of ${RUNS}; demo model ` +
    `from local S3, C-NMC cell UID_11_1_1_all.bmp):\n` +
    `  require to first prediction ${row.requireToFirstPredictionMs} ms (goal <= ${GOAL_MS} ms: ` +
    `${row.requireToFirstPredictionMs <= GOAL_MS ? 'met' : 'NOT met'})\n` +
    `    of which require of the ${row.bundleMb} MB bundle ${row.requireHandlerMs} ms` +
    (row.tfjsBesideMb > 0
      ? ` (and TF.js beside it, ${row.tfjsBesideMb} MB, read only where TF.js serves)`
      : '') +
    `; in the service ` +
    `${row.firstServiceMs} ms: model load ${row.firstModelLoadMs}, analysis ${row.firstAnalysisMs}, ` +
    `writes ${row.firstStoreMs}; the rest (API key GET, Apollo, decode) ` +
    `${round(row.requireToFirstPredictionMs - row.requireHandlerMs - row.firstServiceMs)} ms\n` +
    `  reference, same run: bare Node start ${row.bareNodeStartMs} ms, warm prediction ${row.warmPredictionMs} ms\n`
  );
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
