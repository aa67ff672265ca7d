import { computeMetrics } from '../../src/ml/evaluation/metrics';
import type { ModelCard } from '../../src/services/models';
import { layout } from '../../src/storage/layout';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';

/** The model resolvers over cards stored as the registry stores them (no network is loaded here). */
describe('model resolvers', () => {
  let h: ResolverHarness;
  const labels = [1, 1, 1, 1, 0, 0, 0, 0];
  const card = (version: string, testSplitId: string | null, probs: number[]): ModelCard =>
    ({
      version,
      createdAt: '2026-11-01T00:00:00.000Z',
      architecture: 'lymphonet',
      inputSize: 64,
      trainedOnBackend: 'wasm',
      config: null,
      threshold: 0.5,
      reviewLow: 0.4,
      reviewHigh: 0.6,
      testMetrics: computeMetrics(labels, probs, 0.5),
      validationMetrics: null,
      history: [],
      bestEpoch: null,
      lineage: { jobId: null, datasetId: null, snapshotId: null, parentVersion: null, testSplitId },
      rocCurve: [],
      morphologyNorms: null,
      preprocessing: 'test',
      notes: null,
    }) as ModelCard;

  beforeAll(async () => {
    h = await startResolverHarness();
    const cards = [
      card('v0001', 'split-1', [0.9, 0.8, 0.4, 0.3, 0.6, 0.2, 0.1, 0.1]),
      card('v0002', 'split-1', [0.9, 0.8, 0.7, 0.6, 0.4, 0.2, 0.1, 0.1]),
      card('v0003', 'split-2', [0.9, 0.8, 0.7, 0.6, 0.4, 0.2, 0.1, 0.1]),
    ];
    for (const c of cards) await h.services.docs.create(layout.modelFile(c.version, 'card.json'), c);
  });
  afterAll(() => h?.stop());

  const COMPARE =
    'query($a: ID!, $b: ID!) { compareModels(a: $a, b: $b) { sameTestSplit a { version architecture } b { version } deltas { metric a b delta } } }';

  it('compares two versions for scientists, with deltas only on the same test split', async () => {
    const same = await h.run(h.keys.SCIENTIST, COMPARE, { a: 'v0001', b: 'v0002' });
    expect(same.errors).toEqual([]);
    const comparison = same.data!.compareModels;
    expect(comparison).toMatchObject({
      sameTestSplit: true,
      a: { version: 'v0001', architecture: 'LYMPHONET' },
    });
    const accuracy = comparison.deltas.find((d: { metric: string }) => d.metric === 'accuracy');
    expect(accuracy).toEqual({ metric: 'accuracy', a: 5 / 8, b: 1, delta: 3 / 8 });
    const across = (await h.run(h.keys.SCIENTIST, COMPARE, { a: 'v0002', b: 'v0003' })).data!.compareModels;
    expect(across.sameTestSplit).toBe(false);
    expect(across.deltas.every((d: { delta: number | null }) => d.delta === null)).toBe(true);
  });

  it('refuses partners and unknown versions', async () => {
    expect((await h.run(h.keys.PARTNER, COMPARE, { a: 'v0001', b: 'v0002' })).code).toBe('FORBIDDEN');
    expect((await h.run(h.keys.SCIENTIST, COMPARE, { a: 'v0001', b: 'v0042' })).code).toBe('NOT_FOUND');
  });

  it('promotes for admins only, compare-and-swap on the expected current version', async () => {
    const PROMOTE =
      'mutation($v: ID!, $expected: ID) { promoteModel(version: $v, expectedCurrentVersion: $expected) { version isProduction } }';
    const PRODUCTION = '{ productionModel { version } }';
    expect((await h.run(h.keys.PARTNER, PRODUCTION)).data).toEqual({ productionModel: null });
    expect((await h.run(h.keys.SCIENTIST, PROMOTE, { v: 'v0001' })).code).toBe('FORBIDDEN');
    expect(await h.services.models.productionVersion()).toBeNull();

    const first = await h.run(h.keys.ADMIN, PROMOTE, { v: 'v0001' });
    expect(first.data!.promoteModel).toEqual({ version: 'v0001', isProduction: true });
    const stale = await h.run(h.keys.ADMIN, PROMOTE, { v: 'v0002', expected: 'v0003' });
    expect(stale.code).toBe('CONFLICT');
    expect(stale.errors[0].extensions).toMatchObject({ currentVersion: 'v0001' });
    expect((await h.run(h.keys.ADMIN, PROMOTE, { v: 'v0002', expected: 'v0001' })).errors).toEqual([]);
    expect((await h.run(h.keys.PARTNER, PRODUCTION)).data).toEqual({ productionModel: { version: 'v0002' } });
  });
});
