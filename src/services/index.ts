import type { Config } from '../config';
import { LambdaJobDispatcher, type JobDispatcher } from '../dispatch/job-dispatcher';
import { LambdaScoringDispatcher, type ScoringDispatcher } from '../dispatch/scoring-dispatcher';
import { DEFAULT_TRAINING_CONFIG } from '../ml/training/training-config';
import { createLogger, type Logger } from '../observability/log';
import { JsonDocuments } from '../storage/json-documents';
import type { ObjectStore } from '../storage/object-store';
import { createS3ObjectStore } from '../storage/s3-object-store';
import { AuditLog } from './audit';
import { AuthService } from './auth';
import { DataJobRunner } from './data-jobs';
import { PatientDataService } from './patient-data';
import { Pseudonyms } from './pseudonyms';
import { RetentionPolicy, RetentionSweep } from './retention';
import { DatasetService } from './datasets';
import { FolderImport } from './folder-import';
import type { ModelArtifacts } from './model-artifacts';
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
  folderImport: FolderImport;
  training: TrainingService;
  models: ModelRegistry;
  predictions: PredictionService;
  reviews: ReviewService;
  patientData: PatientDataService;
  pseudonyms: Pseudonyms;
  retention: RetentionPolicy;
  retentionSweep: RetentionSweep;
  dispatcher: JobDispatcher;
  scoring: ScoringService;
  scoringDispatcher: ScoringDispatcher;
}

/** The composition root: one place that wires adapters into services, from validated config. */
export function createServices(
  config: Config,
  overrides: {
    store?: ObjectStore;
    dispatcher?: JobDispatcher;
    scoringDispatcher?: ScoringDispatcher;
    /** Where models are registered: the training worker, the CLI, the local stack (model-artifacts.ts). */
    registration?: ModelArtifacts;
  } = {},
): Services {
  const log = createLogger(config.logLevel, { service: 'lymphoscope', stage: config.stage });
  const store =
    overrides.store ??
    createS3ObjectStore({
      bucket: config.bucket,
      region: config.region,
      endpoint: config.s3Endpoint,
      forcePathStyle: Boolean(config.s3Endpoint),
      requests: config.s3Requests,
      // Credentials from the default provider chain: the Lambda role on AWS, AWS_ACCESS_KEY_ID and
      // AWS_SECRET_ACCESS_KEY (the local S3's own secret, set by the local stack) elsewhere.
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
  const pseudonyms = pseudonymsFor(config, log);
  const datasets = new DatasetService(store, docs, config.limits, audit, log, pseudonyms);
  const models = new ModelRegistry(store, docs, audit, log, overrides.registration ?? null);
  const periods = {
    predictionPixelDays: config.data.predictionPixelDays,
    predictionRecordDays: config.data.predictionRecordDays,
  };
  const retention = new RetentionPolicy(docs, audit, periods);
  const predictions = new PredictionService(store, docs, models, datasets, config.limits, log, retention);
  return {
    config,
    log,
    store,
    docs,
    audit,
    auth: new AuthService(store, docs, audit),
    datasets,
    folderImport: new FolderImport(store, datasets, config.limits, log),
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
    pseudonyms,
    retention,
    retentionSweep: new RetentionSweep(store, periods, log),
    patientData: new PatientDataService(
      store,
      docs,
      new DataJobRunner(store, docs, audit, log, config.data.jobBudgetMs),
    ),
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

/**
 * The deployment's pseudonym key; without one a deployed stage refuses subject ids, and a local or test
 * stage (whose stack normally passes the key it keeps in its data directory) makes one up for this process.
 */
function pseudonymsFor(config: Config, log: Logger): Pseudonyms {
  if (config.data.pseudonymKey) return Pseudonyms.fromKey(config.data.pseudonymKey);
  if (config.stage === 'local' || config.stage === 'test') {
    log.warn('no LYMPHOSCOPE_PSEUDONYM_KEY: subject pseudonyms last only as long as this process');
    return Pseudonyms.ephemeral();
  }
  return Pseudonyms.fromKey(null);
}
