import { layout } from '../../src/storage/layout';
import { RETENTION_TAG } from '../../src/services/retention';
import { errorCode, startE2eStack, type E2eStack } from '../helpers/e2e-stack';
import { graphqlClient, ok } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import { registerUntrainedModel } from '../helpers/untrained-model';

/**
 * Retention over HTTP against the local stack, with the clock in the test's hands: sweepRetention(now)
 * applies the bucket's lifecycle rules (the same ones serverless.yml deploys) at a chosen time. Images
 * and heat maps go after the stage's 30 days, or after their partner's own period; records, without the
 * pixels, after 365 days; an image a reviewer added to a dataset stays with the dataset.
 */

type Client = ReturnType<typeof graphqlClient>;
let e2e: E2eStack;
const clients = {} as Record<'partnerA' | 'partnerB' | 'scientist', Client>;
const ids = {} as Record<'partnerA' | 'partnerB' | 'scientist', string>;
const cells = sampleImages();
const RETENTION = 'partnerId imageDays effectiveImageDays recordDays';

beforeAll(async () => {
  e2e = await startE2eStack('retention');
  for (const [name, role] of [
    ['partnerA', 'PARTNER'],
    ['partnerB', 'PARTNER'],
    ['scientist', 'SCIENTIST'],
  ] as const) {
    const { createApiKey } = ok(
      await e2e.gql(
        'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } secret } }',
        { input: { name, role } },
      ),
    );
    ids[name] = createApiKey.apiKey.id;
    clients[name] = graphqlClient(e2e.stack.url, createApiKey.secret);
  }
  const card = await registerUntrainedModel(e2e.stack.services, { reviewLow: 0, reviewHigh: 1 });
  ok(await e2e.gql('mutation($v: ID!) { promoteModel(version: $v) { version } }', { v: card.version }));
}, 120_000);

afterAll(() => e2e?.stop());

async function versions(): Promise<string[]> {
  return (await e2e.stack.services.store.listVersions('')).map((v) => `${v.key}@${v.versionId}`).sort();
}

async function sweep(daysFromNow: number): Promise<number> {
  const now = new Date(Date.now() + daysFromNow * 86_400_000).toISOString();
  return ok(await e2e.gql('mutation($now: DateTime) { sweepRetention(now: $now) { expired } }', { now }))
    .sweepRetention.expired;
}

describe('per-partner retention setting', () => {
  it('is set by an admin only, to a supported period, and read by the partner itself or an admin', async () => {
    const set = (client: Client, partnerId: string, imageDays: number | null) =>
      client(
        `mutation($p: ID!, $d: Int) { setPartnerRetention(partnerId: $p, imageDays: $d) { ${RETENTION} } }`,
        {
          p: partnerId,
          d: imageDays,
        },
      );
    expect(errorCode(await set(clients.partnerB, ids.partnerB, 7))).toBe('FORBIDDEN');
    expect(errorCode(await set(e2e.gql, ids.partnerB, 10))).toBe('BAD_USER_INPUT');
    expect(ok(await set(e2e.gql, ids.partnerB, 7)).setPartnerRetention).toEqual({
      partnerId: ids.partnerB,
      imageDays: 7,
      effectiveImageDays: 7,
      recordDays: 365,
    });
    const read = (client: Client, partnerId: string) =>
      client(`query($p: ID!) { partnerRetention(partnerId: $p) { ${RETENTION} } }`, { p: partnerId });
    expect(ok(await read(clients.partnerB, ids.partnerB)).partnerRetention.imageDays).toBe(7);
    expect(ok(await read(clients.partnerA, ids.partnerA)).partnerRetention).toMatchObject({
      imageDays: null,
      effectiveImageDays: 30,
    });
    expect(errorCode(await read(clients.partnerA, ids.partnerB))).toBe('NOT_FOUND');
  });
});

describe('sweepRetention', () => {
  it('expires pixels after their period and records later, leaving dataset copies alone', async () => {
    const predict = async (client: Client, cell: (typeof cells)[number]) =>
      ok(
        await client('mutation($input: PredictInput!) { predict(input: $input) { id } }', {
          input: { imageBase64: cell.bytes.toString('base64') },
        }),
      ).predict.id as string;
    const a = await predict(clients.partnerA, cells[0]);
    const b = await predict(clients.partnerB, cells[1]);
    const { createDataset } = ok(
      await clients.scientist('mutation { createDataset(input: { name: "reviewed" }) { id } }'),
    );
    ok(
      await clients.scientist('mutation($input: SubmitReviewInput!) { submitReview(input: $input) { id } }', {
        input: { predictionId: a, label: cells[0].label, addToDatasetId: createDataset.id },
      }),
    );
    const { store } = e2e.stack.services;
    const imageA = layout.predictionImage(ids.partnerA, a, 'bmp');
    const imageB = layout.predictionImage(ids.partnerB, b, 'bmp');
    expect(await store.getTags(imageA)).toEqual({ [RETENTION_TAG]: 'pixels-stage' });
    expect(await store.getTags(layout.predictionHeatmap(ids.partnerA, a))).toEqual({
      [RETENTION_TAG]: 'pixels-stage',
    });
    expect(await store.getTags(imageB)).toEqual({ [RETENTION_TAG]: 'pixels-7d' });
    expect(await store.getTags(layout.prediction(ids.partnerA, a))).toEqual({});
    const datasetImages = (await versions()).filter((v) =>
      v.startsWith(`datasets/${createDataset.id}/images/`),
    );
    expect(datasetImages).toHaveLength(1);

    const start = await versions();
    expect(await sweep(0)).toBe(0);
    expect(await versions()).toEqual(start);

    // Day 8: partner B's 7 days are over, for its image and heat map only.
    expect(await sweep(8)).toBe(2);
    const day8 = await versions();
    expect(start.filter((v) => !day8.includes(v)).sort()).toEqual(
      [`${imageB}@null`, `${layout.predictionHeatmap(ids.partnerB, b)}@null`].sort(),
    );

    // Day 31: the stage's 30 days for partner A's pixels; the records stay, reviews included.
    expect(await sweep(31)).toBe(2);
    const day31 = await versions();
    expect(day8.filter((v) => !day31.includes(v)).sort()).toEqual(
      [`${imageA}@null`, `${layout.predictionHeatmap(ids.partnerA, a)}@null`].sort(),
    );
    const record = ok(
      await clients.partnerA('query($id: ID!) { prediction(id: $id) { id label review { label } } }', {
        id: a,
      }),
    ).prediction;
    expect(record).toMatchObject({ id: a, review: { label: cells[0].label } });

    // Day 366: records, owner indexes and the review marker go; the dataset's copy does not.
    expect(await sweep(366)).toBeGreaterThanOrEqual(5);
    const day366 = await versions();
    expect(day366.filter((v) => v.includes(a) || v.includes(b))).toEqual([]);
    expect(day366.filter((v) => v.startsWith(`datasets/${createDataset.id}/images/`))).toEqual(datasetImages);
    expect(
      errorCode(await clients.partnerA('query($id: ID!) { prediction(id: $id) { id } }', { id: a })),
    ).toBe('NOT_FOUND');
  });

  it('is for admins only', async () => {
    expect(errorCode(await clients.scientist('mutation { sweepRetention { expired } }'))).toBe('FORBIDDEN');
  });
});
