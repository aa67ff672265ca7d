import { badInput } from '../errors';

/**
 * Every S3 key the product writes, in one place (docs/ARCHITECTURE.md shows the same tree). Ids that
 * reach a key are checked first: a client-supplied id must never climb out of its prefix.
 */
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function safeId(value: string, field = 'id'): string {
  if (!ID.test(value) || value.includes('..')) {
    throw badInput(`${field} must be 1-128 letters, digits, '.', '_' or '-' (got an invalid value).`, {
      field,
    });
  }
  return value;
}

const NO_SUBJECT = '_';
const SUBJECT = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/;
const FOLDER = /^(all|hem)$/;
const EXT = /^[a-z]{2,5}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const VERSION = /^v\d{4,}$/;
const CHART = /^(training-curves|roc|pr)$/;

function chunkIndex(chunk: number): string {
  if (!Number.isInteger(chunk) || chunk < 0 || chunk > 999_999) throw badInput('chunk has an invalid value.');
  return String(chunk).padStart(6, '0');
}

function check(value: string, pattern: RegExp, field: string): string {
  if (!pattern.test(value)) throw badInput(`${field} has an invalid value.`, { field });
  return value;
}

export const layout = {
  // datasets
  datasetsPrefix: () => 'datasets/',
  dataset: (datasetId: string) => `datasets/${safeId(datasetId, 'datasetId')}/dataset.json`,
  imagesPrefix: (datasetId: string) => `datasets/${safeId(datasetId, 'datasetId')}/images/`,
  /**
   * The label and subject are part of the key, so one listing gives counts per label and subject and
   * the whole training snapshot without a HEAD per image.
   */
  image: (datasetId: string, folder: string, subjectId: string | null, imageId: string, ext: string) =>
    `datasets/${safeId(datasetId, 'datasetId')}/images/${check(folder, FOLDER, 'label')}/` +
    `${subjectId === null ? NO_SUBJECT : check(subjectId, SUBJECT, 'subjectId')}/${safeId(imageId, 'imageId')}.${check(ext, EXT, 'ext')}`,
  /** Content-addressed marker: created once (If-None-Match) so identical bytes are stored once. */
  imageBySha: (datasetId: string, sha256: string) =>
    `datasets/${safeId(datasetId, 'datasetId')}/sha256/${check(sha256, SHA256, 'sha256')}.json`,
  snapshot: (datasetId: string, snapshotId: string) =>
    `datasets/${safeId(datasetId, 'datasetId')}/snapshots/${safeId(snapshotId, 'snapshotId')}.json`,

  // presigned uploads
  upload: (uploadId: string) => `uploads/${safeId(uploadId, 'uploadId')}/upload.json`,
  uploadObject: (uploadId: string) => `uploads/${safeId(uploadId, 'uploadId')}/object`,
  uploadConfirmation: (uploadId: string) => `uploads/${safeId(uploadId, 'uploadId')}/confirmed.json`,

  // training
  jobsPrefix: () => 'jobs/',
  job: (jobId: string) => `jobs/${safeId(jobId, 'jobId')}/job.json`,
  jobCheckpoint: (jobId: string) => `jobs/${safeId(jobId, 'jobId')}/checkpoint/latest.bin`,
  /** One cross-validation fold of a job (src/ml/decisions): its out-of-fold scores, then its epoch checkpoint. */
  jobFold: (jobId: string, seed: number, fold: number) =>
    `jobs/${safeId(jobId, 'jobId')}/folds/${Math.trunc(seed)}-${Math.trunc(fold)}.json`,
  jobFoldCheckpoint: (jobId: string, seed: number, fold: number) =>
    `jobs/${safeId(jobId, 'jobId')}/folds/${Math.trunc(seed)}-${Math.trunc(fold)}.checkpoint.bin`,
  /** A fanned-out job's served network, once trained (src/services/training-units.ts), and its run. */
  jobFinalModel: (jobId: string, file: 'model.json' | 'weights.bin' | 'result.json') =>
    `jobs/${safeId(jobId, 'jobId')}/final/${file}`,
  /** Created once (If-None-Match) by the invocation that fits the decisions and registers the version. */
  jobFinish: (jobId: string) => `jobs/${safeId(jobId, 'jobId')}/finish.json`,
  jobByToken: (tokenHash: string) => `jobs/by-client-token/${check(tokenHash, SHA256, 'clientToken')}.json`,

  // bulk scoring (src/services/scoring.ts): one folder per job, one per chunk (index zero-padded, so
  // listings come back in chunk order)
  scoringJob: (jobId: string) => `scoring/${safeId(jobId, 'jobId')}/job.json`,
  scoringJobsPrefix: () => 'scoring/',
  scoringChunk: (jobId: string, chunk: number, file: 'manifest.json' | 'partial.jsonl' | 'result.jsonl') =>
    `scoring/${safeId(jobId, 'jobId')}/chunks/${chunkIndex(chunk)}/${file}`,
  /** Created once by the invocation that assembles the results: two finishing chunks cannot both do it. */
  scoringAssembly: (jobId: string) => `scoring/${safeId(jobId, 'jobId')}/assembly.json`,
  scoringResults: (jobId: string, file: 'results.jsonl' | 'results.csv' | 'summary.json') =>
    `scoring/${safeId(jobId, 'jobId')}/${file}`,

  // models
  modelsPrefix: () => 'models/',
  /** model.onnx: the same network exported for onnxruntime at registration (absent when it could not be). */
  modelFile: (
    version: string,
    file: 'model.json' | 'weights.bin' | 'model.onnx' | 'card.json' | 'claim.json',
  ) => `models/${check(version, VERSION, 'version')}/${file}`,
  /** SVG pictures rendered at registration (src/charts): training-curves, roc, pr. */
  modelChart: (version: string, chart: 'training-curves' | 'roc' | 'pr') =>
    `models/${check(version, VERSION, 'version')}/charts/${check(chart, CHART, 'chart')}.svg`,
  productionAlias: () => 'models/aliases/production.json',

  // predictions and reviews
  predictionsPrefix: (partnerId: string) => `predictions/${safeId(partnerId, 'partnerId')}/`,
  prediction: (partnerId: string, predictionId: string) =>
    `predictions/${safeId(partnerId, 'partnerId')}/${safeId(predictionId, 'predictionId')}.json`,
  predictionHeatmap: (partnerId: string, predictionId: string) =>
    `predictions/${safeId(partnerId, 'partnerId')}/${safeId(predictionId, 'predictionId')}.heatmap.png`,
  predictionImage: (partnerId: string, predictionId: string, ext: string) =>
    `predictions/${safeId(partnerId, 'partnerId')}/${safeId(predictionId, 'predictionId')}.image.${ext}`,
  /** id -> owner, so staff can open any prediction by id while partners stay in their prefix. */
  predictionOwner: (predictionId: string) => `prediction-owners/${safeId(predictionId, 'predictionId')}`,
  pendingReviewsPrefix: () => 'reviews/pending/',
  pendingReview: (predictionId: string) => `reviews/pending/${safeId(predictionId, 'predictionId')}`,

  // patient data: deletion and export jobs, exports, retention settings (docs/DATA.md)
  dataJobsPrefix: () => 'data-jobs/',
  dataJob: (jobId: string) => `data-jobs/${safeId(jobId, 'jobId')}.json`,
  exportsPrefix: (partnerId: string) => `exports/${safeId(partnerId, 'partnerId')}/`,
  exportFolder: (partnerId: string, jobId: string) =>
    `exports/${safeId(partnerId, 'partnerId')}/${safeId(jobId, 'jobId')}/`,
  partnerRetention: (partnerId: string) => `retention/partners/${safeId(partnerId, 'partnerId')}.json`,
  /** Every file of one prediction (record, image, heat map) shares this prefix. */
  predictionFilesPrefix: (partnerId: string, predictionId: string) =>
    `predictions/${safeId(partnerId, 'partnerId')}/${safeId(predictionId, 'predictionId')}.`,
  snapshotsPrefix: (datasetId: string) => `datasets/${safeId(datasetId, 'datasetId')}/snapshots/`,
  imageShaPrefix: (datasetId: string) => `datasets/${safeId(datasetId, 'datasetId')}/sha256/`,
  uploadsPrefix: () => 'uploads/',

  // access and audit
  apiKeyByHash: (hash: string) => `keys/by-hash/${check(hash, SHA256, 'key')}.json`,
  apiKeysPrefix: () => 'keys/by-id/',
  apiKeyById: (keyId: string) => `keys/by-id/${safeId(keyId, 'keyId')}.json`,
  auditPrefix: (day: string) => `audit/${check(day, DAY, 'day').replace(/-/g, '/')}/`,
  audit: (at: Date, recordId: string) => {
    const iso = at.toISOString();
    return `audit/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${safeId(recordId)}.json`;
  },
} as const;

/** Parses an image key back into its parts; null for anything that is not an image key. */
export function parseImageKey(
  key: string,
): { datasetId: string; folder: string; subjectId: string | null; imageId: string; ext: string } | null {
  const m = /^datasets\/([^/]+)\/images\/([^/]+)\/([^/]+)\/([^/.]+)\.([a-z]+)$/.exec(key);
  if (!m) return null;
  return {
    datasetId: m[1],
    folder: m[2],
    subjectId: m[3] === NO_SUBJECT ? null : m[3],
    imageId: m[4],
    ext: m[5],
  };
}
