import { ANONYMOUS_ADMIN } from '../../src/services/auth';
import type { ModelCard } from '../../src/services/models';
import { layout } from '../../src/storage/layout';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';

/** health answers without a key (load balancers call it) and reveals no data beyond its fields. */
describe('health resolver', () => {
  let h: ResolverHarness;
  beforeAll(async () => (h = await startResolverHarness()));
  // The last test stops storage itself; stopping it again fails, with nothing left to remove.
  afterAll(() => h?.stop().catch(() => undefined));

  const HEALTH = '{ health { status version stage storageReachable productionModelVersion } }';

  it('answers without a key: ok, the stage and package version, and which version serves', async () => {
    const before = await h.run(null, HEALTH);
    expect(before.errors).toEqual([]);
    expect(before.data!.health).toEqual({
      status: 'ok',
      version: (await import('../../package.json')).version,
      stage: 'test',
      storageReachable: true,
      productionModelVersion: null,
    });
    await h.services.docs.create(layout.modelFile('v0001', 'card.json'), { version: 'v0001' } as ModelCard);
    await h.services.models.promote(ANONYMOUS_ADMIN, 'v0001');
    expect((await h.run(null, HEALTH)).data!.health.productionModelVersion).toBe('v0001');
  });

  it('reports degraded, not an error, when storage does not answer', async () => {
    await h.s3.stop();
    const result = await h.run(null, '{ health { status storageReachable productionModelVersion } }');
    expect(result.errors).toEqual([]);
    expect(result.data!.health).toEqual({
      status: 'degraded',
      storageReachable: false,
      productionModelVersion: null,
    });
  });
});
