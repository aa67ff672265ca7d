import { createHash } from 'node:crypto';
import { graphqlClient, ok } from '../helpers/graphql';
import {
  errorCode,
  importSample,
  startE2eStack,
  startJob,
  watchJob,
  type E2eStack,
} from '../helpers/e2e-stack';
import type { SampleImage } from '../helpers/sample';
import { postUpload, UPLOAD_GRANT } from '../helpers/upload';

const PREDICTION = `id label probabilityAll threshold needsReview reviewReasons modelVersion heatmapUrl imageUrl createdAt
  morphology { areaPx perimeterPx circularity solidity eccentricity comparisons { feature value closerTo } }
  review { label note reviewer reviewedAt agreesWithModel addedToDatasetId }`;

interface PredictionView {
  id: string;
  label: 'ALL' | 'NORMAL';
  probabilityAll: number;
  threshold: number;
  needsReview: boolean;
  reviewReasons: string[];
  modelVersion: string;
  heatmapUrl: string | null;
  imageUrl: string;
  createdAt: string;
  morphology: { areaPx: number; comparisons: Array<{ feature: string }> };
  review: null | {
    label: string;
    note: string | null;
    reviewer: string;
    reviewedAt: string;
    agreesWithModel: boolean;
    addedToDatasetId: string | null;
  };
}

type Gql = ReturnType<typeof graphqlClient>;

/**
 * Predictions and reviews over real HTTP, as partner apps and reviewers use them. The production model
 * is the bundled demo model; a second version is trained here on the sample with a seed whose
 * validation split gives it a wide review band, so some cells land in it.
 */
describe('predictions and reviews end to end', () => {
  let e2e: E2eStack;
  let images: SampleImage[];
  let datasetId: string;
  let demoVersion: string;
  let trained: { version: string; threshold: number; reviewLow: number; reviewHigh: number };
  let partner: Gql;
  let otherPartner: Gql;
  let scientist: Gql;
  let scientistKeyId: string;

  beforeAll(async () => {
    e2e = await startE2eStack('predictions', { demoModel: true, env: { LYMPHOSCOPE_MAX_BATCH: '6' } });
    demoVersion = e2e.stack.productionModelVersion!;
    ({ datasetId, images } = await importSample(e2e));
    const job = await startJob(e2e, {
      datasetId,
      architecture: 'VANILLA',
      inputSize: 32,
      epochs: 3,
      batchSize: 16,
      patience: 5,
      seed: 4,
      // The recipe this test's review band was found with (before colour jitter and TTA were the default).
      colourJitter: 0,
      testTimeAugmentation: false,
    });
    const done = await watchJob(e2e, job.id, (j) => j.status === 'SUCCEEDED', 240_000);
    trained = ok(
      await e2e.gql(
        'query($v: ID!) { modelVersion(version: $v) { version threshold reviewLow reviewHigh } }',
        { v: done.modelVersion },
      ),
    ).modelVersion;

    const key = async (name: string, role: string) =>
      ok(
        await e2e.gql(
          'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } secret } }',
          {
            input: { name, role },
          },
        ),
      ).createApiKey;
    partner = graphqlClient(e2e.stack.url, (await key('lab app', 'PARTNER')).secret);
    otherPartner = graphqlClient(e2e.stack.url, (await key('other lab', 'PARTNER')).secret);
    const reviewer = await key('hematologist', 'SCIENTIST');
    scientist = graphqlClient(e2e.stack.url, reviewer.secret);
    scientistKeyId = reviewer.apiKey.id;
  }, 300_000);

  afterAll(() => e2e?.stop());

  const predict = async (client: Gql, input: Record<string, unknown>): Promise<PredictionView> =>
    ok(
      await client<{ predict: PredictionView }>(
        `mutation($input: PredictInput!) { predict(input: $input) { ${PREDICTION} } }`,
        { input },
      ),
    ).predict;
  const base64 = (image: SampleImage) => image.bytes.toString('base64');
  const inBand = (p: number) => p >= trained.reviewLow && p < trained.reviewHigh;
  /**
   * UNCERTAIN exactly in the trained model's band. Its card now carries an out-of-domain detector too
   * (issue 11), whose threshold lets through about 5% false alarms on real cells by design, so a sample
   * cell may also be OUT_OF_DOMAIN; needsReview is whether any reason holds.
   */
  const expectReviewByTrainedRule = (p: PredictionView) => {
    expect(p.reviewReasons.filter((r) => r !== 'OUT_OF_DOMAIN')).toEqual(
      inBand(p.probabilityAll) ? ['UNCERTAIN'] : [],
    );
    expect(p.needsReview).toBe(p.reviewReasons.length > 0);
  };
  const allPages = async (client: Gql, args: string): Promise<PredictionView[]> => {
    const out: PredictionView[] = [];
    let after: string | null = null;
    for (;;) {
      type Page = {
        predictions: {
          edges: Array<{ node: PredictionView }>;
          pageInfo: { hasNextPage: boolean; endCursor: string };
        };
      };
      const page: Page = ok(
        await client<Page>(
          `query($after: String) { predictions(first: 2, after: $after${args}) { edges { node { ${PREDICTION} } } pageInfo { hasNextPage endCursor } } }`,
          { after },
        ),
      );
      out.push(...page.predictions.edges.map((e) => e.node));
      if (!page.predictions.pageInfo.hasNextPage) return out;
      after = page.predictions.pageInfo.endCursor;
    }
  };

  it('classifies an inline image with the production model: label, probability, morphology, heat map and the image', async () => {
    const cell = images[0];
    const p = await predict(partner, { imageBase64: base64(cell) });
    expect(p.modelVersion).toBe(demoVersion);
    expect(p.probabilityAll).toBeGreaterThanOrEqual(0);
    expect(p.probabilityAll).toBeLessThanOrEqual(1);
    expect(p.label).toBe(p.probabilityAll >= p.threshold ? 'ALL' : 'NORMAL');
    expect(p.morphology.areaPx).toBeGreaterThan(1000);
    expect(p.morphology.comparisons.length).toBeGreaterThan(3);
    expect(p.review).toBeNull();
    expect(Date.parse(p.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    const heatmap = Buffer.from(await (await fetch(p.heatmapUrl!)).arrayBuffer());
    expect(heatmap.subarray(1, 4).toString()).toBe('PNG');
    const stored = Buffer.from(await (await fetch(p.imageUrl)).arrayBuffer());
    expect(stored.equals(cell.bytes)).toBe(true);
  });

  it('classifies the same cell the same way by imageBase64, by datasetId + imageId and by uploadId', async () => {
    const cell = images[30];
    const inline = await predict(partner, {
      imageBase64: base64(cell),
      modelVersion: trained.version,
      explain: false,
    });
    expect(inline.heatmapUrl).toBeNull();
    expectReviewByTrainedRule(inline);
    expect(inline.label).toBe(inline.probabilityAll >= trained.threshold ? 'ALL' : 'NORMAL');

    const imageId = createHash('sha256').update(cell.bytes).digest('hex').slice(0, 32);
    const fromDataset = await predict(scientist, {
      datasetId,
      imageId,
      modelVersion: trained.version,
      explain: false,
    });
    expect(fromDataset.probabilityAll).toBe(inline.probabilityAll);
    // Partners cannot read datasets, so to them the image does not exist.
    expect(
      errorCode(
        await partner('mutation($input: PredictInput!) { predict(input: $input) { id } }', {
          input: { datasetId, imageId },
        }),
      ),
    ).toBe('NOT_FOUND');

    const { createImageUpload: upload } = ok(
      await partner(
        `mutation($input: CreateImageUploadInput!) { createImageUpload(input: $input) { uploadId ${UPLOAD_GRANT} } }`,
        {
          input: { contentType: 'image/bmp', filename: cell.name },
        },
      ),
    );
    expect((await postUpload(upload, cell.bytes, 'image/bmp')).status).toBe(204);
    const early = await partner('mutation($input: PredictInput!) { predict(input: $input) { id } }', {
      input: { uploadId: upload.uploadId },
    });
    expect(errorCode(early)).toBe('BAD_USER_INPUT');
    const { confirmImageUpload } = ok(
      await partner(
        'mutation($id: ID!) { confirmImageUpload(uploadId: $id) { image { width height format } } }',
        { id: upload.uploadId },
      ),
    );
    expect(confirmImageUpload.image).toEqual({ width: 450, height: 450, format: 'bmp' });
    const fromUpload = await predict(partner, {
      uploadId: upload.uploadId,
      modelVersion: trained.version,
      explain: false,
    });
    expect(fromUpload.probabilityAll).toBe(inline.probabilityAll);
    // Another partner's upload id is not theirs to use.
    expect(
      errorCode(
        await otherPartner('mutation($input: PredictInput!) { predict(input: $input) { id } }', {
          input: { uploadId: upload.uploadId },
        }),
      ),
    ).toBe('NOT_FOUND');

    const two = await partner('mutation($input: PredictInput!) { predict(input: $input) { id } }', {
      input: { imageBase64: base64(cell), uploadId: upload.uploadId },
    });
    expect(errorCode(two)).toBe('BAD_USER_INPUT');
  });

  it('classifies a batch in order, and refuses one over the limit without writing anything', async () => {
    const batch = images.filter((_, i) => i % 11 === 5); // 6 cells of both classes
    const { predictBatch } = ok(
      await partner<{ predictBatch: PredictionView[] }>(
        `mutation($inputs: [PredictInput!]!) { predictBatch(inputs: $inputs) { ${PREDICTION} } }`,
        {
          inputs: batch.map((image) => ({
            imageBase64: base64(image),
            modelVersion: trained.version,
            explain: false,
          })),
        },
      ),
    );
    expect(predictBatch).toHaveLength(batch.length);
    for (const [i, p] of predictBatch.entries()) {
      const single = await predict(otherPartner, {
        imageBase64: base64(batch[i]),
        modelVersion: trained.version,
        explain: false,
      });
      expect(p.probabilityAll).toBe(single.probabilityAll);
      expectReviewByTrainedRule(p);
      expect(p.reviewReasons).toEqual(single.reviewReasons);
    }

    const before = (await e2e.stack.services.store.listAll('predictions/')).length;
    const tooMany = await partner(
      'mutation($inputs: [PredictInput!]!) { predictBatch(inputs: $inputs) { id } }',
      {
        inputs: images.slice(0, 7).map((image) => ({ imageBase64: base64(image) })),
      },
    );
    expect(errorCode(tooMany)).toBe('PAYLOAD_TOO_LARGE');
    expect(tooMany.errors![0].extensions).toMatchObject({ limit: 6 });
    expect(errorCode(await partner('mutation { predictBatch(inputs: []) { id } }'))).toBe('BAD_USER_INPUT');
    expect((await e2e.stack.services.store.listAll('predictions/')).length).toBe(before);
  });

  it('reads predictions back: one by id (own only), pages newest first, filters by review need and model version', async () => {
    const mine = await allPages(partner, '');
    // One inline, one by upload (the dataset image was the scientist's) and a batch of six.
    expect(mine).toHaveLength(9);
    expect(new Set(mine.map((p) => p.id)).size).toBe(mine.length);
    expect(mine.map((p) => p.id)).toEqual(
      mine
        .map((p) => p.id)
        .sort()
        .reverse(),
    );

    const { prediction } = ok(
      await partner(`query($id: ID!) { prediction(id: $id) { ${PREDICTION} } }`, { id: mine[0].id }),
    );
    // Presigned URLs are signed per request; everything else is the stored record.
    const unsigned = (p: PredictionView) => ({ ...p, heatmapUrl: null, imageUrl: null });
    expect(unsigned(prediction)).toEqual(unsigned(mine[0]));
    // Another partner's prediction is NOT_FOUND, worded exactly like an id that never existed.
    const ONE = 'query($id: ID!) { prediction(id: $id) { id } }';
    const foreign = await otherPartner(ONE, { id: mine[0].id });
    expect(errorCode(foreign)).toBe('NOT_FOUND');
    const missing = await otherPartner(ONE, { id: '01aaaaaaaaaaaaaaaaaaaaaaaa' });
    expect(foreign.errors![0].message).toBe(
      missing.errors![0].message.replace('01aaaaaaaaaaaaaaaaaaaaaaaa', mine[0].id),
    );
    expect(
      ok(await scientist('query($id: ID!) { prediction(id: $id) { id } }', { id: mine[0].id })).prediction.id,
    ).toBe(mine[0].id);
    expect((await allPages(otherPartner, '')).every((p) => !mine.some((m) => m.id === p.id))).toBe(true);

    const demo = await allPages(partner, `, modelVersion: "${demoVersion}"`);
    expect(demo.map((p) => p.id)).toEqual(
      mine.filter((p) => p.modelVersion === demoVersion).map((p) => p.id),
    );
    expect(demo.length).toBeGreaterThan(0);
    const pending = await allPages(partner, ', needsReview: true');
    expect(pending.map((p) => p.id)).toEqual(mine.filter((p) => p.needsReview && !p.review).map((p) => p.id));
    const clear = await allPages(partner, ', needsReview: false');
    expect(clear.length + pending.length).toBe(mine.length);
  });

  it('queues cells in the review band oldest first; a review records who, when and what, and feeds a dataset', async () => {
    type Queue = {
      reviewQueue: {
        edges: Array<{ node: PredictionView }>;
        pageInfo: { hasNextPage: boolean; endCursor: string };
      };
    };
    // A small selection: a page of 100 is priced at 100x its fields against the query cost limit.
    const QUEUE = `query($first: Int, $after: String) { reviewQueue(first: $first, after: $after) {
      edges { node { id label probabilityAll needsReview reviewReasons modelVersion imageUrl review { reviewer } } } pageInfo { hasNextPage endCursor } } }`;
    // Which cells fall in a band fitted out of fold moves with the split (subjects are pseudonymised at the
    // door), but the rule does not: a prediction is UNCERTAIN exactly when its probability is in its model's
    // band. Sample cells go to the production (demo) model until two predictions wait for review; its card's
    // band holds over half of the sample (docs/ML.md), so a model whose band caught none would fail here.
    const demo: { reviewLow: number; reviewHigh: number } = ok(
      await e2e.gql('query($v: ID!) { modelVersion(version: $v) { reviewLow reviewHigh } }', {
        v: demoVersion,
      }),
    ).modelVersion;
    let waiting = (await allPages(scientist, ', needsReview: true')).length;
    for (const image of images) {
      if (waiting >= 2) break;
      const p = await predict(partner, { imageBase64: base64(image), explain: false });
      const band = p.probabilityAll >= demo.reviewLow && p.probabilityAll < demo.reviewHigh;
      expect(p.reviewReasons.includes('UNCERTAIN')).toBe(band);
      if (p.needsReview) waiting++;
    }
    const queue = ok(await scientist<Queue>(QUEUE, { first: 100 })).reviewQueue.edges.map((e) => e.node);
    expect(queue.length).toBeGreaterThanOrEqual(2);
    expect(queue.every((p) => p.needsReview && p.review === null)).toBe(true);
    // The demo card carries an out-of-domain detector now: a queued cell is UNCERTAIN, OUT_OF_DOMAIN or both.
    expect(
      queue.every(
        (p) =>
          p.reviewReasons.length > 0 &&
          p.reviewReasons.every((r) => ['UNCERTAIN', 'OUT_OF_DOMAIN'].includes(r)),
      ),
    ).toBe(true);
    expect(queue.map((p) => p.id)).toEqual(queue.map((p) => p.id).sort());
    // Staff see every partner's predictions, the scientist's own (by dataset image) included.
    const pending = await allPages(scientist, ', needsReview: true');
    expect(new Set(queue.map((p) => p.id))).toEqual(new Set(pending.map((p) => p.id)));
    const firstPage = ok(await scientist<Queue>(QUEUE, { first: 1 })).reviewQueue;
    const secondPage = ok(
      await scientist<Queue>(QUEUE, { first: 1, after: firstPage.pageInfo.endCursor }),
    ).reviewQueue;
    expect([firstPage.edges[0].node.id, secondPage.edges[0].node.id]).toEqual([queue[0].id, queue[1].id]);

    const { createDataset } = ok(
      await scientist('mutation { createDataset(input: { name: "reviewed cells" }) { id imageCount } }'),
    );
    expect(createDataset.imageCount).toBe(0);
    const oldest = queue[0];
    const verdict = oldest.label === 'ALL' ? 'NORMAL' : 'ALL';
    const SUBMIT = `mutation($input: SubmitReviewInput!) { submitReview(input: $input) { ${PREDICTION} } }`;
    const input = {
      predictionId: oldest.id,
      label: verdict,
      note: 'Smooth outline, no nucleoli.',
      addToDatasetId: createDataset.id,
    };
    expect(errorCode(await partner(SUBMIT, { input }))).toBe('FORBIDDEN');
    const before = Date.now();
    const { submitReview } = ok(await scientist<{ submitReview: PredictionView }>(SUBMIT, { input }));
    expect(submitReview.review).toEqual({
      label: verdict,
      note: input.note,
      reviewer: scientistKeyId,
      reviewedAt: expect.any(String),
      agreesWithModel: false,
      addedToDatasetId: createDataset.id,
    });
    expect(Date.parse(submitReview.review!.reviewedAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(submitReview.review!.reviewedAt)).toBeLessThanOrEqual(Date.now());
    expect(submitReview).toMatchObject({
      id: oldest.id,
      label: oldest.label,
      probabilityAll: oldest.probabilityAll,
      needsReview: true,
    });

    const after = ok(await scientist<Queue>(QUEUE, { first: 100 })).reviewQueue.edges.map((e) => e.node.id);
    expect(after).toEqual(queue.slice(1).map((p) => p.id));
    // The reviewed cell is in the dataset, under the reviewer's label, byte for byte.
    const { dataset } = ok(
      await scientist(
        'query($id: ID!) { dataset(id: $id) { imageCount labelCounts { label count } images { edges { node { sha256 label } } } } }',
        {
          id: createDataset.id,
        },
      ),
    );
    expect(dataset.imageCount).toBe(1);
    expect(dataset.labelCounts.find((c: { label: string }) => c.label === verdict).count).toBe(1);
    const reviewedBytes = Buffer.from(await (await fetch(oldest.imageUrl)).arrayBuffer());
    expect(dataset.images.edges[0].node).toEqual({
      sha256: createHash('sha256').update(reviewedBytes).digest('hex'),
      label: verdict,
    });

    expect(errorCode(await scientist(SUBMIT, { input: { predictionId: oldest.id, label: 'ALL' } }))).toBe(
      'CONFLICT',
    );
    // A review that contradicts the label the same cell already has in the training dataset is refused
    // with a CONFLICT that says so; nothing is recorded. With the dataset's label it is recorded.
    const next = queue[1];
    const nextBytes = Buffer.from(await (await fetch(next.imageUrl)).arrayBuffer());
    const sample = images.find((i) => i.bytes.equals(nextBytes))!;
    const opposite = sample.label === 'ALL' ? 'NORMAL' : 'ALL';
    const contradicting = await scientist(SUBMIT, {
      input: { predictionId: next.id, label: opposite, addToDatasetId: datasetId },
    });
    expect(errorCode(contradicting)).toBe('CONFLICT');
    expect(contradicting.errors![0].extensions).toMatchObject({ label: sample.label });
    expect(
      ok(await scientist<Queue>(QUEUE, { first: 100 })).reviewQueue.edges.map((e) => e.node.id),
    ).toContain(next.id);
    const agreeing = ok(
      await scientist<{ submitReview: PredictionView }>(SUBMIT, {
        input: { predictionId: next.id, label: sample.label, addToDatasetId: datasetId },
      }),
    ).submitReview;
    expect(agreeing.review).toMatchObject({ label: sample.label, addedToDatasetId: datasetId });
    expect((await e2e.stack.services.datasets.imageRefs(datasetId)).length).toBe(images.length);

    expect(errorCode(await scientist(SUBMIT, { input: { predictionId: 'nonexistent', label: 'ALL' } }))).toBe(
      'NOT_FOUND',
    );

    const { auditLog } = ok(
      await e2e.gql(
        'query($day: String) { auditLog(day: $day, first: 100) { edges { node { action target actor } } } }',
        {
          day: submitReview.review!.reviewedAt.slice(0, 10),
        },
      ),
    );
    expect(auditLog.edges.map((e: { node: unknown }) => e.node)).toContainEqual({
      action: 'prediction.review',
      target: oldest.id,
      actor: `${scientistKeyId} (scientist)`,
    });
  });
});
