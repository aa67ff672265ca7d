import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DEMO_MODEL_DIR } from '../../src/config';
import type { ModelCard, NewModelCard } from '../../src/services/models';
import type { PredictionRecord } from '../../src/services/predictions';
import { layout } from '../../src/storage/layout';
import { graphqlClient, ok } from '../helpers/graphql';
import { startE2eStack, type E2eStack } from '../helpers/e2e-stack';
import { sampleImages, type SampleImage } from '../helpers/sample';

const FIELDS = 'id label probabilityAll threshold needsReview reviewReasons outOfDomainScore modelVersion';

interface View {
  id: string;
  label: 'ALL' | 'NORMAL';
  probabilityAll: number;
  threshold: number;
  needsReview: boolean;
  reviewReasons: string[];
  outOfDomainScore: number | null;
  modelVersion: string;
}

type Gql = ReturnType<typeof graphqlClient>;

/**
 * Why a prediction needs review, over real HTTP with the bundled demo model (trained on the real C-NMC
 * sample). The same weights are registered a second time with a review band placed between the sample
 * cells' own probabilities, so that some cells fall inside it and some outside: inside carries
 * [UNCERTAIN] and waits in the review queue, outside carries [] and needsReview false.
 */
describe('review reasons end to end', () => {
  let e2e: E2eStack;
  let partner: Gql;
  let scientist: Gql;
  let cells: SampleImage[];
  let banded: ModelCard;
  const byVersion = new Map<string, View[]>();

  beforeAll(async () => {
    e2e = await startE2eStack('reasons', { demoModel: true });
    const key = async (name: string, role: string) =>
      ok(
        await e2e.gql('mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }', {
          i: { name, role },
        }),
      ).createApiKey.secret as string;
    partner = graphqlClient(e2e.stack.url, await key('lab app', 'PARTNER'));
    scientist = graphqlClient(e2e.stack.url, await key('hematologist', 'SCIENTIST'));
    const images = sampleImages();
    // Three blasts and three normal cells, spread over the sample.
    cells = [0, 15, 30, images.length - 1, images.length - 8, images.length - 15].map((i) => images[i]);
  }, 120_000);

  afterAll(() => e2e?.stop());

  const predictBatch = async (modelVersion: string | null): Promise<View[]> =>
    ok(
      await partner<{ predictBatch: View[] }>(
        `mutation($inputs: [PredictInput!]!) { predictBatch(inputs: $inputs) { ${FIELDS} } }`,
        {
          inputs: cells.map((c) => ({
            imageBase64: c.bytes.toString('base64'),
            explain: false,
            ...(modelVersion ? { modelVersion } : {}),
          })),
        },
      ),
    ).predictBatch;

  it('gives every prediction of the production model its reasons, with needsReview true exactly when there are some', async () => {
    const demo = await predictBatch(null);
    const { productionModel } = ok(await e2e.gql('{ productionModel { version reviewLow reviewHigh } }'));
    for (const p of demo) {
      expect(p.modelVersion).toBe(productionModel.version);
      const inBand =
        p.probabilityAll >= productionModel.reviewLow && p.probabilityAll < productionModel.reviewHigh;
      expect(p.reviewReasons.includes('UNCERTAIN')).toBe(inBand);
      expect(p.needsReview).toBe(p.reviewReasons.length > 0);
    }
    byVersion.set(productionModel.version, demo);
  });

  it('carries UNCERTAIN inside the band and nothing outside it, in predict, predictBatch and every listing', async () => {
    const demo = [...byVersion.values()][0];
    // A band over the 3rd and 4th of the six probabilities: two cells below it, two above, two inside.
    const sorted = demo.map((p) => p.probabilityAll).sort((a, b) => a - b);
    expect(new Set(sorted).size).toBe(sorted.length);
    const reviewLow = (sorted[1] + sorted[2]) / 2;
    const reviewHigh = (sorted[3] + sorted[4]) / 2;
    const [modelJson, weights, cardJson] = await Promise.all([
      readFile(path.join(DEMO_MODEL_DIR, 'model.json'), 'utf8'),
      readFile(path.join(DEMO_MODEL_DIR, 'weights.bin')),
      readFile(path.join(DEMO_MODEL_DIR, 'card.json'), 'utf8'),
    ]);
    const { version: _v, createdAt: _c, ...card } = JSON.parse(cardJson) as ModelCard;
    banded = await e2e.stack.services.models.register(
      { modelJson: JSON.parse(modelJson), weights },
      {
        ...(card as NewModelCard),
        threshold: (reviewLow + reviewHigh) / 2,
        reviewLow,
        reviewHigh,
        notes: 'the demo model with a review band placed by a test',
      },
    );

    const batch = await predictBatch(banded.version);
    const single = ok(
      await partner<{ predict: View }>(`mutation($i: PredictInput!) { predict(input: $i) { ${FIELDS} } }`, {
        i: { imageBase64: cells[0].bytes.toString('base64'), modelVersion: banded.version },
      }),
    ).predict;
    expect(single.probabilityAll).toBe(batch[0].probabilityAll);
    expect(single.reviewReasons).toEqual(batch[0].reviewReasons);

    const inside = batch.filter((p) => p.probabilityAll >= reviewLow && p.probabilityAll < reviewHigh);
    const outside = batch.filter((p) => !inside.includes(p));
    expect(inside).toHaveLength(2);
    expect(outside).toHaveLength(4);
    for (const [i, p] of batch.entries()) expect(p.probabilityAll).toBe(demo[i].probabilityAll);
    // The band adds or removes UNCERTAIN and nothing else: an out-of-domain verdict (none on these training
    // cells today) comes from the same card either way.
    const outOfDomain = (i: number) => demo[i].reviewReasons.filter((r) => r === 'OUT_OF_DOMAIN');
    for (const [i, p] of batch.entries()) {
      const reasons = [...(inside.includes(p) ? ['UNCERTAIN'] : []), ...outOfDomain(i)];
      expect(p).toMatchObject({ needsReview: reasons.length > 0, reviewReasons: reasons });
    }
    expect(inside.filter((p) => p.reviewReasons.join() === 'UNCERTAIN').length).toBeGreaterThan(0);
    expect(outside.filter((p) => p.reviewReasons.length === 0 && !p.needsReview).length).toBeGreaterThan(0);
    // The band does not move the out-of-domain score: the same weights and card give the same one (null
    // while the card carries no out-of-domain model).
    for (const [i, p] of batch.entries()) expect(p.outOfDomainScore).toBe(demo[i].outOfDomainScore);

    // The queue and the listings give the same reasons as the answers did.
    const QUEUE = `query($reason: ReviewReason) { reviewQueue(first: 50, reason: $reason) { edges { node { ${FIELDS} } } } }`;
    const queue = async (reason: string | null) =>
      ok(
        await scientist<{ reviewQueue: { edges: Array<{ node: View }> } }>(QUEUE, { reason }),
      ).reviewQueue.edges.map((e) => e.node);
    const waiting = (await queue(null)).filter((p) => p.modelVersion === banded.version);
    expect(new Set(waiting.map((p) => p.id))).toEqual(
      new Set([...batch, single].filter((p) => p.needsReview).map((p) => p.id)),
    );
    const answered = new Map([...batch, single].map((p) => [p.id, p.reviewReasons]));
    for (const p of waiting) expect(p.reviewReasons).toEqual(answered.get(p.id));
    expect((await queue('UNCERTAIN')).map((p) => p.id)).toEqual(
      (await queue(null)).filter((p) => p.reviewReasons.includes('UNCERTAIN')).map((p) => p.id),
    );
    expect(await queue('OUT_OF_DOMAIN')).toEqual(
      (await queue(null)).filter((p) => p.reviewReasons.includes('OUT_OF_DOMAIN')),
    );
    const pending = ok(
      await partner(
        `query($v: ID!) { predictions(first: 50, needsReview: true, modelVersion: $v) { edges { node { ${FIELDS} } } } }`,
        { v: banded.version },
      ),
    ).predictions.edges.map((e: { node: View }) => e.node) as View[];
    expect(pending.map((p) => p.id).sort()).toEqual(waiting.map((p) => p.id).sort());
    for (const p of pending) expect(p.reviewReasons).toEqual(answered.get(p.id));
    const bad = await scientist('{ reviewQueue(reason: SOMETIMES) { edges { cursor } } }');
    expect(bad.errors?.[0].extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('reads a record written before reasons were kept as [UNCERTAIN] when it needed review, [] when not', async () => {
    const { docs } = e2e.stack.services;
    const ownerOf = async (id: string) =>
      (await docs.get<{ partnerId: string }>(layout.predictionOwner(id)))!.value.partnerId;
    const current = [...byVersion.values()][0][0];
    const partnerId = await ownerOf(current.id);
    const stored = (await docs.get<PredictionRecord>(layout.prediction(partnerId, current.id)))!.value;
    expect(stored.reviewReasons).toEqual(current.reviewReasons);
    // What PredictionService wrote before it kept reasons: no reviewReasons, no outOfDomainScore.
    const { reviewReasons: _r, outOfDomainScore: _o, ...old } = stored;
    const oldIds = { flagged: '01aaaaaaaaaaaaaaaaaaaaaaa1', clear: '01aaaaaaaaaaaaaaaaaaaaaaa2' };
    for (const [kind, id] of Object.entries(oldIds)) {
      await docs.create(layout.predictionOwner(id), { partnerId });
      await docs.create(layout.prediction(partnerId, id), { ...old, id, needsReview: kind === 'flagged' });
    }
    await docs.create(layout.pendingReview(oldIds.flagged), { partnerId });

    const read = ok(
      await scientist(
        `query($a: ID!, $b: ID!) { a: prediction(id: $a) { ${FIELDS} } b: prediction(id: $b) { ${FIELDS} } }`,
        { a: oldIds.flagged, b: oldIds.clear },
      ),
    );
    expect(read.a).toMatchObject({ needsReview: true, reviewReasons: ['UNCERTAIN'], outOfDomainScore: null });
    expect(read.b).toMatchObject({ needsReview: false, reviewReasons: [], outOfDomainScore: null });
    // The oldest in the queue (its ULID is older than any made by this run), by reason too.
    const QUEUE = '{ reviewQueue(first: 1, reason: UNCERTAIN) { edges { node { id reviewReasons } } } }';
    expect(ok(await scientist(QUEUE)).reviewQueue.edges[0].node).toEqual({
      id: oldIds.flagged,
      reviewReasons: ['UNCERTAIN'],
    });
  });
});
