import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DEMO_MODEL_DIR } from '../config';
import type { ModelBundle } from '../ml/models/model-bundle';
import { createLogger } from '../observability/log';
import type { ModelCard, NewModelCard } from '../services/models';
import type { Services } from '../services';
import { startHttpApi } from './http-api';
import { LambdaEmulator } from './lambda-emulator';
import { portInUse, portIsFree, rememberedS3Port, rememberS3Port } from './ports';
import type { StoreRepair } from './s3-repair';
import { startLocalS3InWorker, type LocalS3, type LocalS3Credentials } from './s3-server';
import { landingPage } from './static-files';
import { modelArtifacts } from '../services/model-artifacts';

/** Where console/build.ts puts the review console; the stack serves it at /console/. */
export const CONSOLE_DIST_DIR = path.join(__dirname, '..', '..', 'console', 'dist');
const WORKER_FUNCTION = 'lymphoscope-local-trainWorker';
const EXPLORER_PATH = '/console/explorer/';
const SCORE_WORKER_FUNCTION = 'lymphoscope-local-scoreWorker';

export interface LocalStackOptions {
  /** Where the local S3 keeps its objects (kept across restarts). */
  dataDir: string;
  /** API port; 0 picks a free one. */
  port?: number;
  host?: string;
  /** The local S3's port; 0 or absent: the port of the last start on this dataDir if free, else any. */
  s3Port?: number;
  bucket?: string;
  /** The admin key to create if missing (LYMPHOSCOPE_ADMIN_KEY); a fresh one is made when absent and none exists. */
  adminKey?: string;
  /** Import the bundled demo model as the production model when none is set (default true). */
  demoModel?: boolean;
  /** Extra environment for the API and the workers (limits, log level...). */
  env?: Record<string, string>;
  /** Worker retry delay and timeout, shortened by tests. */
  workerRetryDelayMs?: number;
  workerTimeoutMs?: number;
  /** Worker processes running at once (default: one per core). */
  workerConcurrency?: number;
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** The built review console served at /console/ (default console/dist). */
  consoleDir?: string;
}

export interface LocalStack {
  url: string;
  /** The review console on the same origin as the API. */
  consoleUrl: string;
  /** The offline GraphQL explorer (GraphiQL, part of the console build). */
  explorerUrl: string;
  s3Endpoint: string;
  /** What the start-up check of the local S3's files repaired or quarantined (logged as warnings). */
  s3Repairs: StoreRepair[];
  /** What the API, the workers and any other client sign local S3 requests with. */
  s3Credentials: LocalS3Credentials;
  lambdaEndpoint: string;
  bucket: string;
  services: Services;
  emulator: LambdaEmulator;
  adminKey: string | null;
  adminKeyCreated: boolean;
  productionModelVersion: string | null;
  /**
   * The local S3 server alone, for fault tests: stop it to make storage unreachable, start it again on
   * the same port and directory (the data is kept) to let the API recover without a restart.
   */
  s3: { port: number; stop(): Promise<void>; start(): Promise<void> };
  stop(): Promise<void>;
}

/**
 * Everything on one machine with no AWS account: an S3 server on 127.0.0.1, a Lambda emulator running
 * the training worker in child processes, and the real GraphQL Lambda handler behind an HTTP server.
 * The handler reads its configuration from the environment, as on Lambda, so the environment is set
 * before the handler module is loaded.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const bucket = options.bucket ?? 'lymphoscope-local';
  const log = createLogger(options.logLevel ?? 'info', { service: 'lymphoscope-local' });
  const s3Directory = path.join(options.dataDir, 's3');
  // No port asked for: the one the last start on this data directory used, or any free one if it is taken.
  let s3PortWanted = options.s3Port ?? 0;
  if (s3PortWanted && !(await portIsFree(s3PortWanted))) {
    throw portInUse(s3PortWanted, 'The local S3', 'LYMPHOSCOPE_S3_PORT to another port');
  }
  if (!s3PortWanted) {
    const remembered = await rememberedS3Port(options.dataDir);
    if (remembered && (await portIsFree(remembered))) s3PortWanted = remembered;
    else if (remembered)
      log.warn('the local S3 port of the last start is taken; using another', { port: remembered });
  }
  const secretAccessKey = await localS3Secret(options.dataDir);
  const allowedOrigins: string[] = [];
  const startS3 = (port: number) =>
    startLocalS3InWorker({ directory: s3Directory, port, bucket, secretAccessKey, allowedOrigins });
  let s3: LocalS3 | null = await startS3(s3PortWanted);
  // Said once per object, for the operator: what a crash had damaged, and what was done about it.
  for (const repair of s3.repairs)
    log.warn(`local S3: ${repair.problem}; ${repair.action}`, { ...repair, directory: s3Directory });
  const s3Repairs = s3.repairs;
  const { port: s3Port, endpoint: s3Endpoint, credentials: s3Credentials } = s3;

  const env: Record<string, string> = {
    LYMPHOSCOPE_STAGE: 'local',
    LYMPHOSCOPE_BUCKET: bucket,
    LYMPHOSCOPE_S3_ENDPOINT: s3Endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: s3Credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3Credentials.secretAccessKey,
    LYMPHOSCOPE_TRAIN_WORKER_FUNCTION: WORKER_FUNCTION,
    LYMPHOSCOPE_SCORE_WORKER_FUNCTION: SCORE_WORKER_FUNCTION,
    LYMPHOSCOPE_LOG_LEVEL: options.logLevel ?? 'info',
    LYMPHOSCOPE_PSEUDONYM_KEY: await localPseudonymKey(options.dataDir),
    ...(options.env ?? {}),
  };
  // The same object is filled in below with the emulator's own endpoint, which workers need to
  // re-invoke themselves when their time runs out.
  const workerEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  const emulator = new LambdaEmulator({
    functions: {
      [WORKER_FUNCTION]: path.join(__dirname, '..', 'handlers', 'train-worker.ts'),
      [SCORE_WORKER_FUNCTION]: path.join(__dirname, '..', 'handlers', 'score-worker.ts'),
    },
    env: workerEnv,
    retryDelayMs: options.workerRetryDelayMs ?? 2000,
    timeoutMs: options.workerTimeoutMs ?? 900_000,
    maxConcurrent: options.workerConcurrency,
    log,
  });
  const lambda = await emulator.start();
  env.LYMPHOSCOPE_LAMBDA_ENDPOINT = lambda.endpoint;
  workerEnv.LYMPHOSCOPE_LAMBDA_ENDPOINT = lambda.endpoint;
  Object.assign(process.env, env);

  // Loaded only now: the handler builds its services from process.env at import.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const graphql = require('../handlers/graphql') as typeof import('../handlers/graphql');
  const api = await startHttpApi({
    handler: graphql.handler as never,
    port: options.port ?? 0,
    host: options.host,
    staticDirs: { '/console': options.consoleDir ?? CONSOLE_DIST_DIR },
    // The offline explorer is part of the console build (console/explorer); /explorer is its short name.
    redirects: { '/explorer': EXPLORER_PATH, '/explorer/': EXPLORER_PATH },
    landingPage: landingPage({ api: '/graphql', console: '/console/', explorer: EXPLORER_PATH }),
  });
  // The console, served by the API, is the one web page that may upload to the local S3 (CORS).
  allowedOrigins.push(new URL(api.url).origin, `http://localhost:${api.port}`);
  allowedOrigins.forEach((origin) => s3?.allowOrigin(origin));
  const { createServices } = await import('../services');
  const { loadConfig } = await import('../config');
  const services = createServices(loadConfig(), { registration: modelArtifacts });

  let adminKey: string | null = options.adminKey ?? null;
  let adminKeyCreated = false;
  if (adminKey) {
    await services.auth.ensure('local admin', 'ADMIN', adminKey);
  } else if ((await services.auth.list()).filter((k) => k.role === 'ADMIN' && !k.revokedAt).length === 0) {
    const created = await services.auth.create(
      { keyId: 'bootstrap', role: 'ADMIN', partnerId: 'bootstrap' },
      'local admin',
      'ADMIN',
    );
    adminKey = created.secret;
    adminKeyCreated = true;
  }

  // Remembered only once everything is up: a start that fails leaves the last good port in place.
  await rememberS3Port(options.dataDir, s3Port);

  let productionModelVersion = await services.models.productionVersion();
  if (!productionModelVersion && options.demoModel !== false) {
    const card = await installDemoModel(services);
    productionModelVersion = card?.version ?? null;
  }

  return {
    url: api.url,
    consoleUrl: new URL('/console/', api.url).toString(),
    explorerUrl: new URL(EXPLORER_PATH, api.url).toString(),
    s3Endpoint,
    s3Credentials,
    s3Repairs,
    lambdaEndpoint: lambda.endpoint,
    bucket,
    services,
    emulator,
    adminKey,
    adminKeyCreated,
    productionModelVersion,
    s3: {
      port: s3Port,
      async stop() {
        await s3?.stop();
        s3 = null;
      },
      async start() {
        s3 ??= await startS3(s3Port);
      },
    },
    async stop() {
      await api.stop();
      await emulator.stop();
      await s3?.stop();
      s3 = null;
    },
  };
}

/**
 * A secret of the local deployment, made once per data directory and kept there in `file`, readable by
 * this user only (0600); one shorter than `shortest` characters is made anew. Restarts and this user's
 * other processes (workers, the CLI) read the same one, and nobody else can. Deleting the data directory
 * deletes it with the data it protects.
 */
async function localSecret(
  dataDir: string,
  file: string,
  { bytes, shortest }: { bytes: number; shortest: number },
): Promise<string> {
  const at = path.join(dataDir, file);
  try {
    const secret = (await readFile(at, 'utf8')).trim();
    if (secret.length >= shortest) return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(bytes).toString('base64url');
  await mkdir(dataDir, { recursive: true });
  await writeFile(at, secret + '\n', { mode: 0o600, flag: 'w' });
  return secret;
}

/** The pseudonym key (docs/DATA.md): a subject keeps its pseudonym across restarts. */
const localPseudonymKey = (dataDir: string) =>
  localSecret(dataDir, 'pseudonym.key', { bytes: 32, shortest: 32 });

/** The local S3's secret: a well-known one would let any local process or web page forge records. */
const localS3Secret = (dataDir: string) => localSecret(dataDir, 's3-secret', { bytes: 24, shortest: 16 });

/** Registers the bundled demo model (data/demo-model) and makes it the production model. */
export async function installDemoModel(services: Services, dir = DEMO_MODEL_DIR): Promise<ModelCard | null> {
  let bundle: ModelBundle;
  let card: ModelCard;
  try {
    const [modelJson, weights, cardJson] = await Promise.all([
      readFile(path.join(dir, 'model.json'), 'utf8'),
      readFile(path.join(dir, 'weights.bin')),
      readFile(path.join(dir, 'card.json'), 'utf8'),
    ]);
    bundle = { modelJson: JSON.parse(modelJson), weights };
    card = JSON.parse(cardJson);
  } catch (error) {
    services.log.warn('no bundled demo model found; train one with `npm run demo-model`', {
      dir,
      error: String(error),
    });
    return null;
  }
  const { version: _v, createdAt: _c, ...rest } = card;
  const registered = await services.models.register(bundle, rest as NewModelCard);
  await services.models.promote(
    { keyId: 'bootstrap', role: 'ADMIN', partnerId: 'bootstrap' },
    registered.version,
    null,
  );
  services.log.info('demo model installed', { version: registered.version });
  return registered;
}
