import { createLogger } from '../../src/observability/log';
import { AuditLog } from '../../src/services/audit';
import { DatasetService } from '../../src/services/datasets';
import { JsonDocuments } from '../../src/storage/json-documents';
import type { ObjectStore } from '../../src/storage/object-store';

/** The dataset limits the service tests run with unless they test a limit. */
export const TEST_DATASET_LIMITS = {
  inlineImageBytes: 2 << 20,
  uploadBytes: 10 << 20,
  imageSide: 4096,
  importFiles: 100,
  pageSize: 100,
};

/** A DatasetService over `store` (a real local S3's, or a wrapper of it), with its audit log and documents. */
export function datasetServiceOn(
  store: ObjectStore,
  limits: typeof TEST_DATASET_LIMITS = TEST_DATASET_LIMITS,
): { datasets: DatasetService; docs: JsonDocuments } {
  const docs = new JsonDocuments(store);
  const datasets = new DatasetService(store, docs, limits, new AuditLog(store, docs), createLogger('silent'));
  return { datasets, docs };
}
