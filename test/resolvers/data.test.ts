import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';

/**
 * The patient-data resolvers' guards: whose retention a key may read or set, the periods reported, and
 * the sweep kept to local stages. The jobs themselves are exercised by test/e2e/patient-data.test.ts.
 */
describe('data resolvers', () => {
  let h: ResolverHarness;
  let partnerId: string;
  const READ =
    'query($p: ID!) { partnerRetention(partnerId: $p) { partnerId imageDays effectiveImageDays recordDays } }';
  const SET =
    'mutation($p: ID!, $d: Int) { setPartnerRetention(partnerId: $p, imageDays: $d) { imageDays effectiveImageDays } }';

  beforeAll(async () => {
    h = await startResolverHarness({
      LYMPHOSCOPE_PREDICTION_PIXEL_DAYS: '14',
      LYMPHOSCOPE_PREDICTION_RECORD_DAYS: '400',
    });
    partnerId = (await h.run(h.keys.PARTNER, '{ me { id } }')).data!.me.id;
  });
  afterAll(() => h?.stop());

  it("shows a partner its own retention with the stage's periods, and another partner's as NOT_FOUND", async () => {
    expect((await h.run(h.keys.PARTNER, READ, { p: partnerId })).data!.partnerRetention).toEqual({
      partnerId,
      imageDays: null,
      effectiveImageDays: 14,
      recordDays: 400,
    });
    expect((await h.run(h.keys.PARTNER, READ, { p: 'key-someone-else' })).code).toBe('NOT_FOUND');
  });

  it("lets only admins set a partner's period, to one of the offered periods or back to the default", async () => {
    expect((await h.run(h.keys.PARTNER, SET, { p: partnerId, d: 7 })).code).toBe('FORBIDDEN');
    const odd = await h.run(h.keys.ADMIN, SET, { p: partnerId, d: 8 });
    expect(odd.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'imageDays' });
    expect((await h.run(h.keys.ADMIN, SET, { p: partnerId, d: 90 })).data!.setPartnerRetention).toEqual({
      imageDays: 90,
      effectiveImageDays: 90,
    });
    expect(
      (await h.run(h.keys.PARTNER, READ, { p: partnerId })).data!.partnerRetention.effectiveImageDays,
    ).toBe(90);
    expect((await h.run(h.keys.ADMIN, SET, { p: partnerId, d: null })).data!.setPartnerRetention).toEqual({
      imageDays: null,
      effectiveImageDays: 14,
    });
  });

  it('runs the retention sweep for admins on a test stage, at the time given', async () => {
    const SWEEP = 'mutation($now: DateTime) { sweepRetention(now: $now) { now expired } }';
    expect((await h.run(h.keys.SCIENTIST, SWEEP, {})).code).toBe('FORBIDDEN');
    const swept = await h.run(h.keys.ADMIN, SWEEP, { now: '2030-01-01T00:00:00.000Z' });
    expect(swept.errors).toEqual([]);
    expect(swept.data!.sweepRetention.now).toBe('2030-01-01T00:00:00.000Z');
    expect((await h.run(h.keys.PARTNER, '{ dataJob(id: "dj-none") { id } }')).data).toEqual({
      dataJob: null,
    });
  });
});
