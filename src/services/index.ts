import type { Config } from '../config';
import { LambdaJobDispatcher, type JobDispatcher } from '../dispatch/job-dispatcher';
import { LambdaScoringDispatcher, type ScoringDispatcher } from '../dispatch/scoring-dispatcher';
import { DEFAULT_TRAINING_CONFIG } from '../ml/train';
import { createLogger, type Logger } from '../observability/log';
import { JsonDocuments } from '../storage/json-documents';
import type { ObjectStore } from '../storage/object-store';
import { createS3ObjectStore } from '../storage/s3-object-store';
import { LOCAL_S3_CREDENTIALS } from '../local/s3-server';
import { AuditLog } from './audit';
import { AuthService } from './auth';
import { DatasetService } from './datasets';
import { ModelRegistry } from './models';
import { PredictionService } from './predictions';
import { ReviewService } from './reviews';
import { ScoringService } from './scoring';
import { TrainingService } from './training';

export interface Services {
  config: Config;
  log: Logger;
  store: ObjectStore;
  docs: JsonDocuments;
  audit: AuditLog;
  auth: AuthService;
  datasets: DatasetService;
  training: TrainingService;
  models: ModelRegistry;
  predictions: PredictionService;
  reviews: ReviewService;
  dispatcher: JobDispatcher;
  scoring: ScoringService;
  scoringDispatcher: ScoringDispatcher;
}

/** The composition root: one place that wires adapters into services, from validated config. */
export function createServices(
  config: Config,
  overrides: { store?: ObjectStore; dispatcher?: JobDispatcher; scoringDispatcher?: ScoringDispatcher } = {},
): Services {
  const log = createLogger(config.logLevel, { service: 'lymphoscope', stage: config.stage });
  const store =
    overrides.store ??
    createS3ObjectStore({
      bucket: config.bucket,
      region: config.region,
      endpoint: config.s3Endpoint,
      forcePathStyle: Boolean(config.s3Endpoint),
      ...(config.s3Endpoint ? { credentials: LOCAL_S3_CREDENTIALS } : {}),
    });
  const docs = new JsonDocuments(store);
  const audit = new AuditLog(store, docs);
  const dispatcher =
    overrides.dispatcher ??
    new LambdaJobDispatcher(config.trainWorkerFunction, {
      region: config.region,
      endpoint: config.lambdaEndpoint,
    });
  const scoringDispatcher =
    overrides.scoringDispatcher ??
    new LambdaScoringDispatcher(config.scoring.workerFunction, {
      region: config.region,
      endpoint: config.lambdaEndpoint,
    });
  const datasets = new DatasetService(store, docs, config.limits, audit, log);
  const models = new ModelRegistry(store, docs, audit, log);
  const predictions = new PredictionService(store, docs, models, datasets, config.limits, log);
  return {
    config,
    log,
    store,
    docs,
    audit,
    auth: new AuthService(store, docs, audit),
    datasets,
    training: new TrainingService(
      store,
      docs,
      datasets,
      dispatcher,
      DEFAULT_TRAINING_CONFIG,
      config.limits,
      log,
      { leaseMs: config.workerLeaseMs },
    ),
    models,
    predictions,
    reviews: new ReviewService(predictions, datasets, audit),
    dispatcher,
    scoring: new ScoringService(
      store,
      docs,
      datasets,
      models,
      scoringDispatcher,
      { images: config.scoring.maxImages, concurrency: config.scoring.maxConcurrency },
      log,
    ),
    scoringDispatcher,
  };
}
