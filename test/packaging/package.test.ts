import { execFile } from 'child_process';
import { existsSync, readdirSync, statSync } from 'fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'fs/promises';
import { tmpdir } from 'os';
import { join, resolve } from 'path';
import { promisify } from 'util';
import { loadConfig } from '../../src/config';
import { installDemoModel } from '../../src/local/stack';
import { GraphBuilder } from '../../src/ml/onnx/graph';
import { createServices } from '../../src/services';
import { startTestS3, TestS3 } from '../helpers/s3';
import { modelArtifacts } from '../../src/services/model-artifacts';
import { whilePackagingAlone } from '../helpers/packaging-lock';
import { LAMBDA_NODE_MAJOR, lambdaNode } from '../helpers/lambda-node';

/**
 * The deployable artifact, tested as Lambda will run it: `serverless package` (osls, offline, no AWS
 * account), each function's zip unpacked into an empty directory, and the handler required there by
 * a fresh Node process of Lambda's major (22) that cannot see the project's node_modules. A bundling
 * mistake (a native module esbuild cannot inline, a wasm file left behind, a dependency that only
 * resolves from the repository, syntax the runtime lacks) fails here rather than on the first cold start.
 */

const run = promisify(execFile);
const root = resolve(__dirname, '../..');
/** This file's own copies of the zips (ensurePackaged). */
let artifacts = '';
const LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

function newestMtimeMs(paths: string[]): number {
  let newest = 0;
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const stat = statSync(path);
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path, { recursive: true, withFileTypes: true })) {
        if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
      }
    } else {
      newest = Math.max(newest, stat.mtimeMs);
    }
  }
  return newest;
}

/**
 * Packages unless .serverless/ already holds zips newer than every input (packaging takes a while), and
 * copies them to `artifacts`, where another test file's packaging cannot remove them.
 */
async function ensurePackaged(): Promise<void> {
  const built = join(root, '.serverless');
  const zips = ['graphql.zip', 'trainWorker.zip', 'scoreWorker.zip'];
  const inputs = [
    'src',
    'deploy',
    'serverless.yml',
    'package.json',
    'package-lock.json',
    'tsconfig.json',
  ].map((p) => join(root, p));
  await whilePackagingAlone(async () => {
    const newest = newestMtimeMs(inputs);
    const fresh = zips.every(
      (zip) => existsSync(join(built, zip)) && statSync(join(built, zip)).mtimeMs > newest,
    );
    if (!fresh) {
      await run('npx', ['serverless', 'package', '--stage', 'test'], {
        cwd: root,
        timeout: 300_000,
        maxBuffer: 16 * 1024 * 1024,
      });
    }
    for (const zip of zips) await copyFile(join(built, zip), join(artifacts, zip));
  });
}

async function unpack(zip: string): Promise<{ dir: string; files: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'lymphoscope-lambda-'));
  await run('unzip', ['-q', zip, '-d', dir]);
  const files = readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
  return { dir, files };
}

/** Only what a Lambda has: the unpacked files, the function's environment, no NODE_PATH. */
function lambdaEnvironment(dir: string, s3: TestS3): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    NODE_PATH: '',
    HOME: dir,
    AWS_REGION: s3.config.region,
    AWS_ACCESS_KEY_ID: s3.config.credentials!.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.config.credentials!.secretAccessKey,
    AWS_LAMBDA_FUNCTION_NAME: 'lymphoscope-test-package',
    LYMPHOSCOPE_STAGE: 'test',
    LYMPHOSCOPE_BUCKET: s3.bucket,
    LYMPHOSCOPE_S3_ENDPOINT: s3.endpoint,
    LYMPHOSCOPE_WASM_DIR: join(dir, 'node_modules/@tensorflow/tfjs-backend-wasm/dist'),
    LYMPHOSCOPE_LOG_LEVEL: 'warn',
  };
}

/** Runs `script` (CommonJS) with `dir` as the working directory; returns the JSON it prints last. */
async function runInLambdaDir(
  node: string,
  dir: string,
  s3: TestS3,
  script: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Record<string, unknown>> {
  const file = join(dir, 'package-test-invoke.cjs');
  await writeFile(file, script);
  const { stdout } = await run(node, [file], {
    cwd: dir,
    env: { ...lambdaEnvironment(dir, s3), ...env },
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const lines = stdout.trim().split('\n');
  return {
    ...(JSON.parse(lines[lines.length - 1]) as Record<string, unknown>),
    stdoutLines: lines.slice(0, -1),
  };
}

function httpApiEvent(body: unknown, headers: Record<string, string> = {}) {
  const now = new Date();
  return {
    version: '2.0',
    routeKey: 'POST /graphql',
    rawPath: '/graphql',
    rawQueryString: '',
    headers: { 'content-type': 'application/json', host: 'api.example.com', ...headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'packagetest',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: {
        method: 'POST',
        path: '/graphql',
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'jest',
      },
      requestId: 'package-test',
      routeKey: 'POST /graphql',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}

const lambdaContext = `{
  awsRequestId: 'package-test', functionName: 'lymphoscope-test', functionVersion: '$LATEST',
  memoryLimitInMB: '2048', callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 29000,
}`;

describe('Lambda packages', () => {
  let s3: TestS3;
  let node: string;
  const unpacked: string[] = [];

  beforeAll(async () => {
    artifacts = await mkdtemp(join(tmpdir(), 'lymphoscope-zips-'));
    unpacked.push(artifacts);
    [node] = await Promise.all([lambdaNode(), ensurePackaged()]);
    s3 = await startTestS3();
  }, 600_000);

  afterAll(async () => {
    await s3?.stop();
    await Promise.all(unpacked.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  describe('graphql', () => {
    let dir: string;
    let files: string[];
    beforeAll(async () => {
      ({ dir, files } = await unpack(join(artifacts, 'graphql.zip')));
      unpacked.push(dir);
    });

    it('holds the bundle, sharp for linux-x64 with libvips, and the wasm binaries, and nothing else', () => {
      expect(files).toContain('src/handlers/graphql.js');
      // No source map: production loads none (no --enable-source-maps), so none is shipped.
      expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
      expect(files).toContain('node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm');
      expect(files).toContain('node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm');
      expect(files.some((f) => /^node_modules\/@img\/sharp-linux-x64\/lib\/.+\.node$/.test(f))).toBe(true);
      expect(
        files.some((f) => /^node_modules\/@img\/sharp-libvips-linux-x64\/lib\/libvips-cpp\.so/.test(f)),
      ).toBe(true);
      // Everything else is inside the bundle; in particular no second copy of the AWS SDK or tfjs.
      const packages = new Set(
        files
          .filter((f) => f.startsWith('node_modules/'))
          .map((f) =>
            f
              .split('/')
              .slice(1, f.startsWith('node_modules/@') ? 3 : 2)
              .join('/'),
          ),
      );
      expect([...packages].sort()).toEqual([
        '@img/colour',
        '@img/sharp-libvips-linux-x64',
        '@img/sharp-linux-x64',
        '@tensorflow/tfjs-backend-wasm',
        'detect-libc',
        'onnxruntime-common',
        'onnxruntime-node',
        'semver',
        'sharp',
      ]);
      // onnxruntime-node installs binaries for five platforms; only Lambda's goes in.
      const ortBinaries = files.filter((f) => f.startsWith('node_modules/onnxruntime-node/bin/'));
      expect(ortBinaries.sort()).toEqual([
        'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
        'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
      ]);
      const unzippedBytes = files.reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
      expect(unzippedBytes).toBeLessThan(LAMBDA_UNZIPPED_LIMIT_BYTES);
    });

    it('holds TF.js in a file beside the bundle, which the workers hold inside theirs (deploy/esbuild-plugins.js)', async () => {
      // tfjs-core's engine names a missing backend with this message: TF.js is wherever it is found.
      const tfjsMarker = "Backend name '";
      expect(files).toContain('src/handlers/graphql.tfjs.js');
      expect(await readFile(join(dir, 'src/handlers/graphql.tfjs.js'), 'utf8')).toContain(tfjsMarker);
      expect(await readFile(join(dir, 'src/handlers/graphql.js'), 'utf8')).not.toContain(tfjsMarker);
      for (const [zip, bundle] of [
        ['trainWorker.zip', 'src/handlers/train-worker.js'],
        ['scoreWorker.zip', 'src/handlers/score-worker.js'],
      ]) {
        const { stdout: listing } = await run('unzip', ['-Z1', join(artifacts, zip)], {
          maxBuffer: 16 << 20,
        });
        expect(listing.split('\n').filter((f) => f.startsWith('src/'))).toEqual([bundle]);
        const { stdout: code } = await run('unzip', ['-p', join(artifacts, zip), bundle], {
          maxBuffer: 64 << 20,
        });
        expect(code).toContain(tfjsMarker);
      }
    });

    it('leaves out what only registering a model needs: vega and the ONNX writer, which the worker holds', async () => {
      // Strings of vega-lite's schema URL and onnx-proto's message names: in the training worker's bundle,
      // which registers models, and not in the API's (src/services/model-artifacts.ts).
      const markers = ['vega.github.io/schema', 'onnx.ModelProto'];
      const api = await readFile(join(dir, 'src/handlers/graphql.js'), 'utf8');
      // The worker's bundle alone, read from its zip (its own test below unpacks the whole zip).
      const { stdout: trainer } = await run(
        'unzip',
        ['-p', join(artifacts, 'trainWorker.zip'), 'src/handlers/train-worker.js'],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      for (const marker of markers) {
        expect(trainer).toContain(marker);
        expect(api).not.toContain(marker);
      }
    });

    it('answers the health query from the unpacked files alone, under Node 22, with onnxruntime and without loading TF.js', async () => {
      const event = httpApiEvent({ query: '{ health { status mlBackend tfjsBackend storageReachable } }' });
      // A one-node ONNX model (y = sigmoid(x)) that the packaged onnxruntime must run.
      const probe = new GraphBuilder();
      const x = probe.input('x', [1, 2]);
      probe.reserve('y');
      probe.output(probe.op('Sigmoid', [x], 'sigmoid'), 'y', [1, 2]);
      await writeFile(join(dir, 'probe.onnx'), probe.encode('probe', 'packaging test'));
      const result = await runInLambdaDir(
        node,
        dir,
        s3,
        `
        const { handler } = require('./src/handlers/graphql.js');
        // Proves the packaged native binary and libvips load here, whatever the handler loads lazily.
        const sharp = require('./node_modules/sharp');
        (async () => {
          const png = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#800080' } }).png().toBuffer();
          const response = await handler(${JSON.stringify(event)}, ${lambdaContext});
          const sharpFiles = Object.keys(require.cache).filter((f) => f.includes('/node_modules/sharp/'));
          const ort = require('onnxruntime-node');
          const session = await ort.InferenceSession.create('./probe.onnx');
          const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([0, 2]), [1, 2]) });
          const ortFiles = Object.keys(require.cache).filter((f) => f.includes('/node_modules/onnxruntime-'));
          console.log(JSON.stringify({ node: process.versions.node, response, pngBytes: png.length, sharpFiles, onnx: Array.from(out.y.data), ortFiles }));
          process.exit(0);
        })().catch((error) => { console.error(error); process.exit(1); });
        `,
      );
      expect(Number(String(result.node).split('.')[0])).toBe(LAMBDA_NODE_MAJOR);
      // Powertools' Metrics: the invocation's metrics as one Embedded Metric Format line on stdout.
      const emf = (result.stdoutLines as string[])
        .filter((line) => line.includes('"_aws"'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const request = emf.find((record) => record.requests === 1);
      expect(request).toMatchObject({ service: 'lymphoscope', stage: 'test', requests: 1 });
      expect(JSON.stringify(request)).toContain('"Namespace":"Lymphoscope"');
      const response = result.response as { statusCode: number; body: string };
      expect(response.statusCode).toBe(200);
      expect(JSON.parse(response.body)).toEqual({
        data: {
          health: {
            status: 'ok',
            mlBackend: 'onnxruntime',
            tfjsBackend: 'not loaded',
            storageReachable: true,
          },
        },
      });
      expect(result.pngBytes).toBeGreaterThan(0);
      const sharpFiles = result.sharpFiles as string[];
      expect(sharpFiles.length).toBeGreaterThan(0);
      for (const file of sharpFiles) expect(file.startsWith(dir)).toBe(true);
      const [half, high] = result.onnx as number[];
      expect(half).toBeCloseTo(0.5, 6);
      expect(high).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
      const ortFiles = result.ortFiles as string[];
      expect(ortFiles.length).toBeGreaterThan(0);
      for (const file of ortFiles) expect(file.startsWith(dir)).toBe(true);
    });
  });

  describe('graphql with a model in S3', () => {
    // Served by onnxruntime, and by TF.js (LYMPHOSCOPE_ONNX=off): the bundle's tfjs-core, tfjs-layers
    // and the umbrella's gradients (Grad-CAM) must all be there despite the sub-packages left out. On
    // onnxruntime the instance answers without ever loading TF.js (src/ml/serving/tfjs-network.ts).
    it('loads the production model from S3 and predicts a real cell with a heat map, on onnxruntime and on TF.js', async () => {
      const { dir } = await unpack(join(artifacts, 'graphql.zip'));
      unpacked.push(dir);
      // The local S3 checks SigV4 against its own per-directory secret: the model is registered
      // through the test server's store, which signs with it, as the handler does below with the
      // same credentials in its environment (lambdaEnvironment).
      const services = createServices(
        loadConfig({
          LYMPHOSCOPE_STAGE: 'test',
          LYMPHOSCOPE_BUCKET: s3.bucket,
          LYMPHOSCOPE_S3_ENDPOINT: s3.endpoint,
          LYMPHOSCOPE_LOG_LEVEL: 'warn',
        }),
        { store: s3.store, registration: modelArtifacts },
      );
      const model = await installDemoModel(services);
      expect(model).not.toBeNull();
      const { secret } = await services.auth.create(
        { keyId: 'package-test', role: 'ADMIN', partnerId: 'package-test' },
        'package test',
        'SCIENTIST',
      );
      const image = await readFile(join(root, 'data/cnmc-sample/all/UID_11_1_1_all.bmp'));
      const event = httpApiEvent(
        {
          query:
            'mutation($i: PredictInput!) { predict(input: $i) { id label probabilityAll modelVersion heatmapUrl } }',
          variables: { i: { imageBase64: image.toString('base64'), explain: true } },
        },
        { 'x-api-key': secret },
      );
      const health = httpApiEvent({ query: '{ health { mlBackend tfjsBackend } }' });
      // A listing is one of the calls that load the AWS SDK's S3 client on first use, from inside the bundle.
      const listing = httpApiEvent(
        { query: '{ predictions(first: 50) { edges { node { id } } } }' },
        { 'x-api-key': secret },
      );
      const predictions = [];
      const backends = [];
      for (const onnx of ['on', 'off']) {
        const result = await runInLambdaDir(
          node,
          dir,
          s3,
          `
          const { handler } = require('./src/handlers/graphql.js');
          (async () => {
            const response = await handler(${JSON.stringify(event)}, ${lambdaContext});
            const after = await handler(${JSON.stringify(health)}, ${lambdaContext});
            const tfjsRead = Object.keys(require.cache).some((f) => f.endsWith('/src/handlers/graphql.tfjs.js'));
            const listed = JSON.parse((await handler(${JSON.stringify(listing)}, ${lambdaContext})).body);
            console.log(JSON.stringify({ response, health: JSON.parse(after.body).data.health, tfjsRead, listed }));
            process.exit(0);
          })().catch((error) => { console.error(error); process.exit(1); });
          `,
          { LYMPHOSCOPE_ONNX: onnx },
        );
        backends.push({ ...(result.health as object), tfjsRead: result.tfjsRead });
        const response = result.response as { statusCode: number; body: string };
        const body = JSON.parse(response.body);
        expect(body.errors).toBeUndefined();
        expect(body.data.predict.modelVersion).toBe(model!.version);
        expect(body.data.predict.heatmapUrl).toMatch(/^http/);
        // The heat map's URL is presigned without the SDK's client, and serves the PNG.
        const png = await fetch(body.data.predict.heatmapUrl as string);
        expect(png.status).toBe(200);
        expect(png.headers.get('content-type')).toBe('image/png');
        const listed = result.listed as {
          errors?: unknown;
          data: { predictions: { edges: { node: { id: string } }[] } };
        };
        expect(listed.errors).toBeUndefined();
        expect(listed.data.predictions.edges.map((e) => e.node.id)).toContain(body.data.predict.id);
        predictions.push(body.data.predict as { label: string; probabilityAll: number });
      }
      // TF.js is read from the file beside the bundle when it serves, and not at all otherwise.
      expect(backends).toEqual([
        { mlBackend: 'onnxruntime', tfjsBackend: 'not loaded', tfjsRead: false },
        { mlBackend: 'wasm', tfjsBackend: 'wasm', tfjsRead: true },
      ]);
      const [onnxruntime, tfjs] = predictions;
      expect(['ALL', 'NORMAL']).toContain(tfjs.label);
      expect(tfjs.label).toBe(onnxruntime.label);
      expect(tfjs.probabilityAll).toBeCloseTo(onnxruntime.probabilityAll, 3);
    });
  });

  describe('trainWorker', () => {
    it('holds its own bundle with the same native and wasm files, and loads from them', async () => {
      const { dir, files } = await unpack(join(artifacts, 'trainWorker.zip'));
      unpacked.push(dir);
      expect(files).toContain('src/handlers/train-worker.js');
      expect(files).not.toContain('src/handlers/graphql.js');
      expect(files).toContain('node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm');
      expect(files.some((f) => /^node_modules\/@img\/sharp-linux-x64\/lib\/.+\.node$/.test(f))).toBe(true);

      // Loading the module builds its services; an event without a jobId is refused before any work.
      const result = await runInLambdaDir(
        node,
        dir,
        s3,
        `
        const { handler } = require('./src/handlers/train-worker.js');
        handler({}, ${lambdaContext}).then(
          () => { console.log(JSON.stringify({ refused: false })); process.exit(0); },
          (error) => { console.log(JSON.stringify({ refused: true, code: error.code })); process.exit(0); },
        );
        `,
      );
      expect(result).toMatchObject({ refused: true, code: 'BAD_USER_INPUT' });
    });
  });
});
