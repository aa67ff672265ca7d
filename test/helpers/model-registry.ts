import { createLogger } from '../../src/observability/log';
import { AuditLog } from '../../src/services/audit';
import { modelArtifacts, type ModelArtifacts } from '../../src/services/model-artifacts';
import { ModelRegistry } from '../../src/services/models';
import { JsonDocuments } from '../../src/storage/json-documents';
import type { ObjectStore } from '../../src/storage/object-store';

/** A registry over `store`, silent, registering with the real chart and ONNX makers unless told otherwise. */
export function registryOver(
  store: ObjectStore,
  artifacts: ModelArtifacts | null = modelArtifacts,
): ModelRegistry {
  const docs = new JsonDocuments(store);
  return new ModelRegistry(store, docs, new AuditLog(store, docs), createLogger('silent'), artifacts);
}
