import type { Architecture } from '../../src/ml/models/architecture-names';
import { buildModel } from '../../src/ml/models/architectures';
import { serializeModel } from '../../src/ml/models/model-io';
import { initRuntime } from '../../src/ml/runtime';
import { PREPROCESSING } from '../../src/ml/preprocessing';
import type { ModelCard } from '../../src/services/models';
import type { Services } from '../../src/services';

/**
 * Registers an untrained model straight through the registry (no training run): tests and the load script
 * need a model that serves, not one that is right. Its threshold and review band are fixed, so a prediction's
 * needsReview depends only on the random weights.
 */
export async function registerUntrainedModel(
  services: Services,
  options: {
    architecture?: Architecture;
    inputSize?: number;
    seed?: number;
    /** Free text for the card; says who registered it and why. */
    notes?: string;
    reviewLow?: number;
    reviewHigh?: number;
  } = {},
): Promise<ModelCard> {
  await initRuntime();
  const architecture = options.architecture ?? 'vanilla';
  const inputSize = options.inputSize ?? 32;
  const model = buildModel(architecture, inputSize, options.seed ?? 7);
  try {
    const bundle = await serializeModel(model);
    return await services.models.register(bundle, {
      architecture,
      inputSize,
      trainedOnBackend: 'untrained',
      config: null,
      threshold: 0.5,
      reviewLow: options.reviewLow ?? 0.3,
      reviewHigh: options.reviewHigh ?? 0.7,
      testMetrics: null,
      validationMetrics: null,
      history: [],
      bestEpoch: null,
      lineage: { jobId: null, datasetId: null, snapshotId: null, parentVersion: null, testSplitId: null },
      rocCurve: [],
      morphologyNorms: null,
      preprocessing: PREPROCESSING,
      notes: options.notes ?? 'untrained, registered by a security test',
    });
  } finally {
    model.dispose();
  }
}
