import { ErrorCode } from '../../src/errors';
import { computeMetrics } from '../../src/ml/evaluation/metrics';
import { createLogger } from '../../src/observability/log';
import { AuditLog } from '../../src/services/audit';
import { ModelRegistry, type ModelCard } from '../../src/services/models';
import { JsonDocuments } from '../../src/storage/json-documents';
import { layout } from '../../src/storage/layout';
import { startTestS3, type TestS3 } from '../helpers/s3';

/** Cards as the registry stores them (written straight to S3: these tests never load a network). */
describe('ModelRegistry.compare', () => {
  let s3: TestS3;
  let docs: JsonDocuments;
  let registry: ModelRegistry;

  const labels = [1, 1, 1, 1, 0, 0, 0, 0];
  const card = (version: string, testSplitId: string | null, probs: number[] | null): ModelCard =>
    ({
      version,
      architecture: 'vanilla',
      inputSize: 32,
      threshold: 0.5,
      testMetrics: probs ? computeMetrics(labels, probs, 0.5) : null,
      lineage: { jobId: null, datasetId: null, snapshotId: null, parentVersion: null, testSplitId },
    }) as unknown as ModelCard;

  beforeAll(async () => {
    s3 = await startTestS3();
    docs = new JsonDocuments(s3.store);
    registry = new ModelRegistry(s3.store, docs, new AuditLog(s3.store, docs), createLogger('silent'));
    const cards = [
      card('v0001', 'split-1', [0.9, 0.8, 0.4, 0.3, 0.6, 0.2, 0.1, 0.1]),
      card('v0002', 'split-1', [0.9, 0.8, 0.7, 0.6, 0.4, 0.2, 0.1, 0.1]),
      card('v0003', 'split-2', [0.9, 0.8, 0.7, 0.6, 0.4, 0.2, 0.1, 0.1]),
      card('v0004', null, [0.9, 0.8, 0.7, 0.6, 0.4, 0.2, 0.1, 0.1]),
      card('v0005', null, null),
    ];
    for (const c of cards) await docs.create(layout.modelFile(c.version, 'card.json'), c);
  });
  afterAll(() => s3?.stop());

  const byMetric = async (a: string, b: string) => {
    const comparison = await registry.compare(a, b);
    return { comparison, deltas: Object.fromEntries(comparison.deltas.map((d) => [d.metric, d])) };
  };

  it('gives b - a for every compared metric when both were tested on the same split', async () => {
    const { comparison, deltas } = await byMetric('v0001', 'v0002');
    expect(comparison.sameTestSplit).toBe(true);
    expect([comparison.a.version, comparison.b.version]).toEqual(['v0001', 'v0002']);
    expect(comparison.deltas.map((d) => d.metric)).toEqual([
      'accuracy',
      'balancedAccuracy',
      'sensitivity',
      'specificity',
      'precision',
      'f1',
      'weightedF1',
      'rocAuc',
      'prAuc',
      'brier',
      'ece',
    ]);
    // v0001 calls 2 of 4 blasts and 1 normal ALL (5 of 8 right); v0002 all 8 right.
    expect(deltas.accuracy).toEqual({ metric: 'accuracy', a: 5 / 8, b: 1, delta: 3 / 8 });
    expect(deltas.sensitivity.delta).toBeCloseTo(0.5, 12);
    expect(deltas.specificity.delta).toBeCloseTo(0.25, 12);
    for (const d of comparison.deltas) expect(d.delta).toBeCloseTo(d.b! - d.a!, 12);
  });

  it('shows both figures but no delta across different or unknown test splits', async () => {
    for (const [a, b] of [
      ['v0002', 'v0003'],
      ['v0004', 'v0004'],
    ]) {
      const { comparison, deltas } = await byMetric(a, b);
      expect(comparison.sameTestSplit).toBe(false);
      expect(deltas.accuracy.a).toBe(1);
      expect(deltas.accuracy.b).toBe(1);
      for (const d of comparison.deltas) expect(d.delta).toBeNull();
    }
  });

  it('has null figures for a version without test metrics', async () => {
    const { deltas } = await byMetric('v0004', 'v0005');
    expect(deltas.accuracy).toEqual({ metric: 'accuracy', a: 1, b: null, delta: null });
  });

  it('is NOT_FOUND for a version that does not exist or is not a version name', async () => {
    await expect(registry.compare('v0001', 'v9999')).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    await expect(registry.compare('../keys', 'v0001')).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
  });
});
