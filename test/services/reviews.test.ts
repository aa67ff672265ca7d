import { ErrorCode } from '../../src/errors';
import { ANONYMOUS_ADMIN, type Caller } from '../../src/services/auth';
import type { PredictionRecord } from '../../src/services/predictions';
import { sampleImages } from '../helpers/sample';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';
import { registerUntrainedModel } from '../helpers/untrained-model';

/**
 * Reviews of real predictions (an untrained network in production, real C-NMC cells), through the
 * services as createServices wires them over a local S3.
 */
describe('ReviewService', () => {
  let h: ResolverHarness;
  let partner: Caller;
  const scientist: Caller = { keyId: 'key-reviewer', role: 'SCIENTIST', partnerId: 'key-reviewer' };
  const cells = sampleImages();
  let datasetId: string;

  beforeAll(async () => {
    h = await startResolverHarness();
    const card = await registerUntrainedModel(h.services, { notes: 'untrained, for review tests' });
    await h.services.models.promote(ANONYMOUS_ADMIN, card.version);
    partner = await h.services.auth.authenticate(h.keys.PARTNER);
    datasetId = (await h.services.datasets.create(scientist, 'reviewed cells')).id;
  });
  afterAll(() => h?.stop());

  const predict = (cellIndex: number): Promise<PredictionRecord> =>
    h.services.predictions.predict(partner, {
      imageBase64: cells[cellIndex].bytes.toString('base64'),
      explain: false,
    });

  it("records the reviewer's verdict once, audited, and whether it agrees with the model", async () => {
    const prediction = await predict(0);
    const verdict = prediction.label === 'ALL' ? 'NORMAL' : 'ALL';
    const reviewed = await h.services.reviews.submit(scientist, {
      predictionId: prediction.id,
      label: verdict,
      note: 'clefted',
    });
    expect(reviewed.review).toMatchObject({
      label: verdict,
      note: 'clefted',
      reviewer: scientist.keyId,
      agreesWithModel: false,
      addedToDatasetId: null,
    });
    // The partner reads the verdict back on its own prediction.
    expect((await h.services.predictions.require(partner, prediction.id)).review?.label).toBe(verdict);
    await expect(
      h.services.reviews.submit(scientist, { predictionId: prediction.id, label: prediction.label }),
    ).rejects.toMatchObject({ code: ErrorCode.CONFLICT });
    const today = new Date().toISOString().slice(0, 10);
    const audit = (await h.services.audit.list(today, 100)).items.map((i) => i.node);
    expect(audit.filter((r) => r.action === 'prediction.review' && r.target === prediction.id)).toHaveLength(
      1,
    );
  });

  it('feeds the reviewed cell into a dataset under the reviewed label', async () => {
    const prediction = await predict(1);
    const reviewed = await h.services.reviews.submit(scientist, {
      predictionId: prediction.id,
      label: 'ALL',
      addToDatasetId: datasetId,
    });
    expect(reviewed.review?.addedToDatasetId).toBe(datasetId);
    const refs = await h.services.datasets.imageRefs(datasetId);
    expect(refs.map((r) => r.label)).toEqual(['ALL']);
  });

  it('refuses to add a cell the dataset holds under the other label, leaving the prediction unreviewed', async () => {
    const prediction = await predict(1); // the same bytes as the cell added above as ALL
    await expect(
      h.services.reviews.submit(scientist, {
        predictionId: prediction.id,
        label: 'NORMAL',
        addToDatasetId: datasetId,
      }),
    ).rejects.toMatchObject({ code: ErrorCode.CONFLICT, details: { label: 'ALL' } });
    expect((await h.services.predictions.require(scientist, prediction.id)).review).toBeNull();
  });

  it('refuses a note over 2000 characters and a prediction the reviewer cannot see', async () => {
    const prediction = await predict(2);
    await expect(
      h.services.reviews.submit(scientist, {
        predictionId: prediction.id,
        label: 'ALL',
        note: 'n'.repeat(2001),
      }),
    ).rejects.toMatchObject({ code: ErrorCode.BAD_USER_INPUT, details: { field: 'note' } });
    await expect(
      h.services.reviews.submit(scientist, { predictionId: 'p-none', label: 'ALL' }),
    ).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
    expect((await h.services.predictions.require(partner, prediction.id)).review).toBeNull();
  });
});
