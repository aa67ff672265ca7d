import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ModelBundle } from '../ml/model-io';
import { createLogger } from '../observability/log';
import type { ModelCard, NewModelCard } from '../services/models';
import type { Services } from '../services';
import { startHttpApi } from './http-api';
import { LambdaEmulator } from './lambda-emulator';
import { LOCAL_S3_CREDENTIALS, startLocalS3, type LocalS3 } from './s3-server';

export const DEMO_MODEL_DIR = path.join(__dirname, '..', '..', 'data', 'demo-model');
/** Where console/build.ts puts the review console; the stack serves it at /console/. */
export const CONSOLE_DIST_DIR = path.join(__dirname, '..', '..', 'console', 'dist');
const WORKER_FUNCTION = 'lymphoscope-local-trainWorker';
const SCORE_WORKER_FUNCTION = 'lymphoscope-local-scoreWorker';

export interface LocalStackOptions {
  /** Where the local S3 keeps its objects (kept across restarts). */
  dataDir: string;
  /** API port; 0 picks a free one. */
  port?: number;
  host?: string;
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
  s3Endpoint: string;
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
  let s3: LocalS3 | null = await startLocalS3({ directory: s3Directory, port: options.s3Port ?? 0, bucket });
  const { port: s3Port, endpoint: s3Endpoint } = s3;

  const env: Record<string, string> = {
    LYMPHOSCOPE_STAGE: 'local',
    LYMPHOSCOPE_BUCKET: bucket,
    LYMPHOSCOPE_S3_ENDPOINT: s3Endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    LYMPHOSCOPE_TRAIN_WORKER_FUNCTION: WORKER_FUNCTION,
    LYMPHOSCOPE_SCORE_WORKER_FUNCTION: SCORE_WORKER_FUNCTION,
    LYMPHOSCOPE_LOG_LEVEL: options.logLevel ?? 'info',
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
  });
  const { createServices } = await import('../services');
  const { loadConfig } = await import('../config');
  const services = createServices(loadConfig());

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

  let productionModelVersion = await services.models.productionVersion();
  if (!productionModelVersion && options.demoModel !== false) {
    const card = await installDemoModel(services);
    productionModelVersion = card?.version ?? null;
  }

  return {
    url: api.url,
    consoleUrl: new URL('/console/', api.url).toString(),
    s3Endpoint,
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
        s3 ??= await startLocalS3({ directory: s3Directory, port: s3Port, bucket });
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
