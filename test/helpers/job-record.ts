import { DEFAULT_TRAINING_CONFIG } from '../../src/ml/training/train';
import type { JobRecord } from '../../src/services/training';

/**
 * A QUEUED job.json of 10 cells, as TrainingService.start writes it, for tests that drive the training
 * workers' bookkeeping (leases, units, cancel) without training anything.
 */
export function queuedJobRecord(id: string, patch: Partial<JobRecord> = {}): JobRecord {
  const now = new Date().toISOString();
  return {
    id,
    status: 'QUEUED',
    datasetId: 'ds-x',
    snapshotId: id,
    config: { ...DEFAULT_TRAINING_CONFIG, seed: 11, validationFraction: 0.2, testFraction: 0.2 },
    epoch: 0,
    progress: 0,
    etaSeconds: null,
    imagesPerSecond: null,
    history: [],
    split: { train: 6, validation: 2, test: 2, trainSubjects: 6, validationSubjects: 2, testSubjects: 2 },
    modelVersion: null,
    error: null,
    attempts: 0,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
    cancelRequested: false,
    createdBy: 'test',
    lease: null,
    ...patch,
  };
}
