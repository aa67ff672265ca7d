import { XMLValidator } from 'fast-xml-parser';
import { computeMetrics, prCurve, rocCurve } from '../../src/ml/evaluation/metrics';
import { PREPROCESSING } from '../../src/ml/preprocessing';
import { ModelRegistry, type NewModelCard } from '../../src/services/models';
import { registryOver } from '../helpers/model-registry';
import { startTestS3, type TestS3 } from '../helpers/s3';

const labels = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
const probs = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.65, 0.45, 0.2, 0.1];

function newCard(overrides: Partial<NewModelCard> = {}): NewModelCard {
  const metrics = computeMetrics(labels, probs, 0.5);
  return {
    architecture: 'vanilla',
    inputSize: 32,
    trainedOnBackend: 'wasm',
    config: null,
    threshold: 0.5,
    reviewLow: 0.4,
    reviewHigh: 0.6,
    testMetrics: metrics,
    validationMetrics: metrics,
    history: [1, 2, 3].map((epoch) => ({
      epoch,
      loss: 0.7 / epoch,
      accuracy: 0.5 + epoch / 10,
      valLoss: 0.8 / epoch,
      valAccuracy: 0.45 + epoch / 10,
      seconds: 1,
    })),
    bestEpoch: 3,
    lineage: { jobId: null, datasetId: null, snapshotId: null, parentVersion: null, testSplitId: null },
    rocCurve: rocCurve(labels, probs).map((p) => ({ x: p.fpr, y: p.tpr, threshold: p.threshold })),
    prCurve: prCurve(labels, probs).map((p) => ({ x: p.recall, y: p.precision, threshold: p.threshold })),
    morphologyNorms: null,
    preprocessing: PREPROCESSING,
    notes: null,
    ...overrides,
  };
}

describe('ModelRegistry stores the charts with each version', () => {
  let s3: TestS3;
  let registry: ModelRegistry;
  // The registry stores a bundle's bytes without reading them; these tests never load the model.
  const bundle = { modelJson: { format: 'layers-model' }, weights: Buffer.alloc(8) };

  beforeAll(async () => {
    s3 = await startTestS3();
    registry = registryOver(s3.store);
  });
  afterAll(() => s3?.stop());

  it('writes the three SVGs before the card and serves them through presigned URLs', async () => {
    const card = await registry.register(bundle, newCard());
    expect(card.charts).toEqual(['training-curves', 'roc', 'pr']);
    const keys = await s3.listKeys();
    for (const chart of ['training-curves', 'roc', 'pr']) {
      expect(keys).toContain(`models/${card.version}/charts/${chart}.svg`);
    }
    const urls = await registry.chartUrls(card, 60);
    for (const url of Object.values(urls)) {
      const response = await fetch(url!);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/svg+xml');
      expect(XMLValidator.validate(await response.text())).toBe(true);
    }
  });

  it('gives null URLs for charts a version does not have', async () => {
    const card = await registry.register(
      bundle,
      newCard({ history: [], bestEpoch: null, prCurve: undefined }),
    );
    expect(card.charts).toEqual(['roc']);
    const urls = await registry.chartUrls(card, 60);
    expect(urls['training-curves']).toBeNull();
    expect(urls.pr).toBeNull();
    expect(urls.roc).toContain(`models/${card.version}/charts/roc.svg`);
    // A card written before charts existed has no list at all.
    const { charts: _charts, ...older } = card;
    expect(Object.values(await registry.chartUrls(older, 60))).toEqual([null, null, null]);
  });
});
