import path from 'node:path';
import * as z from 'zod';
import type { MlSettings } from './ml/settings';
import {
  DEFAULT_RECIPE_OPTIONS,
  recipeCountProblem,
  type RecipeOptions,
} from './ml/decisions/recipe-options';

/** The trained demo model shipped in the repository (data/demo-model): the local stack's and the CLI's default. */
export const DEMO_MODEL_DIR = path.join(__dirname, '..', 'data', 'demo-model');

/**
 * All configuration, read once from the environment and validated. The names match serverless.yml;
 * the defaults run locally (`npm start`) with no AWS account.
 */
const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** A training job's folds or seeds: unset or empty takes the default; the bounds and words are the recipe's. */
const recipeCount = (name: keyof RecipeOptions) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const value = raw === undefined || raw === '' ? DEFAULT_RECIPE_OPTIONS[name] : Number(raw);
      const problem = recipeCountProblem(name, value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
      return value;
    });

/** Blank means unset, as it always has for the ML variables (an empty `KEY=` in a .env file). */
const blankIsUnset = (value: unknown) =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;
/** One of `values`, in any case and with surrounding spaces, or unset. */
const choice = <T extends string>(values: readonly [T, ...T[]]) =>
  z.preprocess(
    (value) => {
      const given = blankIsUnset(value);
      return typeof given === 'string' ? given.trim().toLowerCase() : given;
    },
    z
      .enum(values, {
        error: (issue) =>
          `must be one of ${values.map((v) => `'${v}'`).join(', ')}, not '${String(issue.input)}'`,
      })
      .optional(),
  );

/** The ML core's settings (src/ml/settings.ts, MlSettings: what each means). */
const mlSchema = z.object({
  LYMPHOSCOPE_ML_BACKEND: choice(['tensorflow', 'wasm', 'cpu']),
  LYMPHOSCOPE_WASM_DIR: z.preprocess(blankIsUnset, z.string().optional()),
  LYMPHOSCOPE_ONNX: choice(['on', 'off']),
  LYMPHOSCOPE_ONNX_THREADS: z.preprocess(
    blankIsUnset,
    z.coerce
      .number({ error: 'must be an integer from 1 to 256' })
      .int('must be an integer from 1 to 256')
      .min(1, 'must be an integer from 1 to 256')
      .max(256, 'must be an integer from 1 to 256')
      .optional(),
  ),
  LYMPHOSCOPE_TRAIN_RUNTIME: choice(['onnxruntime', 'tfjs']),
});

const schema = mlSchema.extend({
  LYMPHOSCOPE_STAGE: z.string().min(1).default('local'),
  LYMPHOSCOPE_BUCKET: z.string().min(3).default('lymphoscope-local'),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  /** Set locally (an S3 server on 127.0.0.1); unset on AWS. */
  LYMPHOSCOPE_S3_ENDPOINT: z.string().url().optional(),
  /**
   * 'direct' (default): GETs, HEADs, PUTs and presigned GETs without the SDK's client where the SDK would
   * resolve the same credentials and endpoint (src/storage/s3-requests.ts); 'sdk': every call through it.
   */
  LYMPHOSCOPE_S3_REQUESTS: choice(['direct', 'sdk']),
  /** Set locally (the local Lambda emulator); unset on AWS. */
  LYMPHOSCOPE_LAMBDA_ENDPOINT: z.string().url().optional(),
  LYMPHOSCOPE_TRAIN_WORKER_FUNCTION: z.string().min(1).default('lymphoscope-local-trainWorker'),
  /**
   * 'required' everywhere but in tests that exercise resolvers without keys. loadConfig refuses
   * 'disabled' on any stage but local and test, so a deployed API can never run without keys.
   */
  LYMPHOSCOPE_AUTH: z.enum(['required', 'disabled']).default('required'),
  LYMPHOSCOPE_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),

  // Limits (docs/SECURITY.md lists each with what a client sees when it is hit).
  LYMPHOSCOPE_MAX_REQUEST_BYTES: int(6 * 1024 * 1024),
  LYMPHOSCOPE_MAX_INLINE_IMAGE_BYTES: int(2 * 1024 * 1024),
  LYMPHOSCOPE_MAX_UPLOAD_BYTES: int(10 * 1024 * 1024),
  LYMPHOSCOPE_MAX_IMAGE_SIDE: int(4096),
  LYMPHOSCOPE_MAX_BATCH: int(32),
  LYMPHOSCOPE_MAX_PAGE_SIZE: int(100),
  LYMPHOSCOPE_MAX_QUERY_DEPTH: int(10),
  LYMPHOSCOPE_MAX_ALIASES: int(30),
  LYMPHOSCOPE_MAX_QUERY_COST: int(2000),
  /** Tokens per GraphQL document, counted before parsing (the console's largest query has a few hundred). */
  LYMPHOSCOPE_MAX_QUERY_TOKENS: int(5000),
  LYMPHOSCOPE_MAX_IMPORT_FILES: int(20000),
  /** Pixels decoded per request, all images together: one 4096x4096 image, or 82 C-NMC cells. */
  LYMPHOSCOPE_MAX_PIXELS_PER_REQUEST: int(4096 * 4096),
  /** Per caller, per process (src/api/rate-limits.ts): requests at once, and a token bucket. */
  LYMPHOSCOPE_MAX_IN_FLIGHT: int(4),
  LYMPHOSCOPE_KEY_RATE_PER_MINUTE: int(1200),
  LYMPHOSCOPE_KEY_BURST: int(200),
  LYMPHOSCOPE_ANONYMOUS_RATE_PER_MINUTE: int(120),
  LYMPHOSCOPE_ANONYMOUS_BURST: int(60),
  LYMPHOSCOPE_MAX_EPOCHS: int(200),
  /**
   * Time a training worker keeps back, on top of 1.5x its longest epoch, before starting another
   * epoch: for the final evaluation, the model's registration and the writes. When less is left it
   * checkpoints and hands the job to a fresh invocation.
   */
  LYMPHOSCOPE_WORKER_SAFETY_MS: int(50_000),
  /**
   * How long a training worker's claim on its job lasts; the worker renews it every third of that. A
   * RUNNING job whose claim lapsed more than half of this ago has lost its worker (retries exhausted,
   * process gone): reading it starts a new one.
   */
  LYMPHOSCOPE_WORKER_LEASE_MS: int(60_000),
  /**
   * Units of one training job (each cross-validation fold, and the served network) running at once, each
   * in its own worker invocation (docs/ARCHITECTURE.md, "Training on Lambda"; serverless.yml's
   * foldConcurrency); 0 runs the folds one after another in the job's own worker.
   */
  LYMPHOSCOPE_FOLD_CONCURRENCY: z.coerce.number().int().min(0).max(100).default(4),
  /** Folds and seeds of every job's out-of-fold decisions (docs/ML.md): 5 x 3; tests run 2 x 1. */
  LYMPHOSCOPE_RECIPE_FOLDS: recipeCount('folds'),
  LYMPHOSCOPE_RECIPE_SEEDS: recipeCount('seeds'),
  /** Presigned URL lifetimes, in seconds; capped at an hour, since a URL is a bearer grant nobody can revoke. */
  LYMPHOSCOPE_UPLOAD_URL_TTL: int(900).pipe(z.number().max(3600)),
  LYMPHOSCOPE_DOWNLOAD_URL_TTL: int(300).pipe(z.number().max(3600)),
  /**
   * Patient data (docs/DATA.md). The pseudonym key turns subject ids into keyed hashes at the door; a
   * deployed stage reads it from its secrets (SSM), the local stack generates one in its data directory.
   * Without it subject ids are refused rather than stored as given.
   */
  LYMPHOSCOPE_PSEUDONYM_KEY: z.string().min(32).optional(),
  /** Default retention of prediction images and heat maps, and of prediction records (serverless.yml rules). */
  LYMPHOSCOPE_PREDICTION_PIXEL_DAYS: int(30),
  LYMPHOSCOPE_PREDICTION_RECORD_DAYS: int(365),
  /** How long one call runs a deletion or export job before returning it RUNNING (call again to go on). */
  LYMPHOSCOPE_DATA_JOB_BUDGET_MS: int(20_000),
  /** Bulk scoring (docs/API.md): the worker function, most images per job, most chunks running at once. */
  LYMPHOSCOPE_SCORE_WORKER_FUNCTION: z.string().min(1).default('lymphoscope-local-scoreWorker'),
  LYMPHOSCOPE_MAX_SCORING_IMAGES: int(200_000),
  LYMPHOSCOPE_MAX_SCORING_CONCURRENCY: int(100),
  /** Introspection: on for local and dev stages, off in prod unless asked for. */
  LYMPHOSCOPE_INTROSPECTION: z.enum(['on', 'off', 'auto']).default('auto'),
});

/** The only stages that may switch authentication off: nothing deployed is ever one of them. */
const AUTH_OPTIONAL_STAGES: ReadonlySet<string> = new Set(['local', 'test']);

export type Config = Readonly<{
  stage: string;
  bucket: string;
  region: string;
  s3Endpoint?: string;
  s3Requests: 'direct' | 'sdk';
  lambdaEndpoint?: string;
  trainWorkerFunction: string;
  authRequired: boolean;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  introspection: boolean;
  limits: Readonly<{
    requestBytes: number;
    inlineImageBytes: number;
    uploadBytes: number;
    imageSide: number;
    batchSize: number;
    pageSize: number;
    queryDepth: number;
    aliases: number;
    queryCost: number;
    queryTokens: number;
    importFiles: number;
    epochs: number;
    pixelsPerRequest: number;
  }>;
  callers: Readonly<{
    inFlight: number;
    keyRatePerMinute: number;
    keyBurst: number;
    anonymousRatePerMinute: number;
    anonymousBurst: number;
  }>;
  urlTtlSeconds: Readonly<{ upload: number; download: number }>;
  workerSafetyMs: number;
  workerLeaseMs: number;
  foldConcurrency: number;
  recipe: Readonly<RecipeOptions>;
  data: Readonly<{
    pseudonymKey: string | null;
    predictionPixelDays: number;
    predictionRecordDays: number;
    jobBudgetMs: number;
  }>;
  scoring: Readonly<{ workerFunction: string; maxImages: number; maxConcurrency: number }>;
  /** For the ML core: every entry point passes it to configureMl (src/ml/settings.ts). */
  ml: MlSettings;
}>;

function parse<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.output<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`Invalid configuration: ${problems}`);
  }
  return parsed.data;
}

function mlSettingsOf(e: z.output<typeof mlSchema>): MlSettings {
  return Object.freeze({
    backend: e.LYMPHOSCOPE_ML_BACKEND ?? 'auto',
    wasmDir: e.LYMPHOSCOPE_WASM_DIR ?? null,
    onnx: e.LYMPHOSCOPE_ONNX !== 'off',
    onnxThreads: e.LYMPHOSCOPE_ONNX_THREADS ?? null,
    trainingRuntime: e.LYMPHOSCOPE_TRAIN_RUNTIME ?? 'onnxruntime',
  });
}

/**
 * The ML variables alone, validated like loadConfig's: for the entry points that run the ML core without
 * the services (the CLI's train, cv, evaluate and predict; the bench scripts).
 */
export function loadMlSettings(env: NodeJS.ProcessEnv = process.env): MlSettings {
  return mlSettingsOf(parse(mlSchema, env));
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = parse(schema, env);
  if (e.LYMPHOSCOPE_AUTH === 'disabled' && !AUTH_OPTIONAL_STAGES.has(e.LYMPHOSCOPE_STAGE)) {
    throw new Error(
      `Invalid configuration: LYMPHOSCOPE_AUTH=disabled is only allowed on the stages ${[...AUTH_OPTIONAL_STAGES].join(', ')}, not '${e.LYMPHOSCOPE_STAGE}'.`,
    );
  }
  return Object.freeze({
    stage: e.LYMPHOSCOPE_STAGE,
    bucket: e.LYMPHOSCOPE_BUCKET,
    region: e.AWS_REGION,
    s3Endpoint: e.LYMPHOSCOPE_S3_ENDPOINT,
    s3Requests: e.LYMPHOSCOPE_S3_REQUESTS ?? 'direct',
    lambdaEndpoint: e.LYMPHOSCOPE_LAMBDA_ENDPOINT,
    trainWorkerFunction: e.LYMPHOSCOPE_TRAIN_WORKER_FUNCTION,
    authRequired: e.LYMPHOSCOPE_AUTH === 'required',
    logLevel: e.LYMPHOSCOPE_LOG_LEVEL,
    introspection:
      e.LYMPHOSCOPE_INTROSPECTION === 'auto'
        ? e.LYMPHOSCOPE_STAGE !== 'prod'
        : e.LYMPHOSCOPE_INTROSPECTION === 'on',
    limits: Object.freeze({
      requestBytes: e.LYMPHOSCOPE_MAX_REQUEST_BYTES,
      inlineImageBytes: e.LYMPHOSCOPE_MAX_INLINE_IMAGE_BYTES,
      uploadBytes: e.LYMPHOSCOPE_MAX_UPLOAD_BYTES,
      imageSide: e.LYMPHOSCOPE_MAX_IMAGE_SIDE,
      batchSize: e.LYMPHOSCOPE_MAX_BATCH,
      pageSize: e.LYMPHOSCOPE_MAX_PAGE_SIZE,
      queryDepth: e.LYMPHOSCOPE_MAX_QUERY_DEPTH,
      aliases: e.LYMPHOSCOPE_MAX_ALIASES,
      queryCost: e.LYMPHOSCOPE_MAX_QUERY_COST,
      queryTokens: e.LYMPHOSCOPE_MAX_QUERY_TOKENS,
      importFiles: e.LYMPHOSCOPE_MAX_IMPORT_FILES,
      epochs: e.LYMPHOSCOPE_MAX_EPOCHS,
      pixelsPerRequest: e.LYMPHOSCOPE_MAX_PIXELS_PER_REQUEST,
    }),
    callers: Object.freeze({
      inFlight: e.LYMPHOSCOPE_MAX_IN_FLIGHT,
      keyRatePerMinute: e.LYMPHOSCOPE_KEY_RATE_PER_MINUTE,
      keyBurst: e.LYMPHOSCOPE_KEY_BURST,
      anonymousRatePerMinute: e.LYMPHOSCOPE_ANONYMOUS_RATE_PER_MINUTE,
      anonymousBurst: e.LYMPHOSCOPE_ANONYMOUS_BURST,
    }),
    urlTtlSeconds: Object.freeze({
      upload: e.LYMPHOSCOPE_UPLOAD_URL_TTL,
      download: e.LYMPHOSCOPE_DOWNLOAD_URL_TTL,
    }),
    workerSafetyMs: e.LYMPHOSCOPE_WORKER_SAFETY_MS,
    workerLeaseMs: e.LYMPHOSCOPE_WORKER_LEASE_MS,
    foldConcurrency: e.LYMPHOSCOPE_FOLD_CONCURRENCY,
    recipe: Object.freeze({ folds: e.LYMPHOSCOPE_RECIPE_FOLDS, seeds: e.LYMPHOSCOPE_RECIPE_SEEDS }),
    data: Object.freeze({
      pseudonymKey: e.LYMPHOSCOPE_PSEUDONYM_KEY ?? null,
      predictionPixelDays: e.LYMPHOSCOPE_PREDICTION_PIXEL_DAYS,
      predictionRecordDays: e.LYMPHOSCOPE_PREDICTION_RECORD_DAYS,
      jobBudgetMs: e.LYMPHOSCOPE_DATA_JOB_BUDGET_MS,
    }),
    scoring: Object.freeze({
      workerFunction: e.LYMPHOSCOPE_SCORE_WORKER_FUNCTION,
      maxImages: e.LYMPHOSCOPE_MAX_SCORING_IMAGES,
      maxConcurrency: e.LYMPHOSCOPE_MAX_SCORING_CONCURRENCY,
    }),
    ml: mlSettingsOf(e),
  });
}
