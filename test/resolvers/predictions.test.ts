import { ANONYMOUS_ADMIN } from '../../src/services/auth';
import { sampleImages } from '../helpers/sample';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';
import { registerUntrainedModel } from '../helpers/untrained-model';

/**
 * The prediction resolvers with an untrained network registered as production (its answers need not be
 * right here, only shaped and guarded) and a real C-NMC cell as input.
 */
describe('prediction resolvers', () => {
  let h: ResolverHarness;
  let otherPartner: string;
  const cell = sampleImages()[0];
  const PREDICT = `mutation($input: PredictInput!) {
    predict(input: $input) { id label probabilityAll needsReview reviewReasons modelVersion }
  }`;

  beforeAll(async () => {
    h = await startResolverHarness({ LYMPHOSCOPE_MAX_BATCH: '2' });
    const card = await registerUntrainedModel(h.services, { notes: 'untrained, for resolver tests' });
    await h.services.models.promote(ANONYMOUS_ADMIN, card.version);
    otherPartner = (await h.services.auth.create(ANONYMOUS_ADMIN, 'other lab', 'PARTNER')).secret;
  });
  afterAll(() => h?.stop());

  it("predicts for a partner, who reads it back; another partner's id is NOT_FOUND", async () => {
    const result = await h.run(h.keys.PARTNER, PREDICT, {
      input: { imageBase64: cell.bytes.toString('base64'), explain: false },
    });
    expect(result.errors).toEqual([]);
    const prediction = result.data!.predict;
    expect(['ALL', 'NORMAL']).toContain(prediction.label);
    expect(prediction.probabilityAll).toBeGreaterThanOrEqual(0);
    expect(prediction.probabilityAll).toBeLessThanOrEqual(1);
    expect(prediction.needsReview).toBe(prediction.reviewReasons.length > 0);
    const READ = 'query($id: ID!) { prediction(id: $id) { id probabilityAll } }';
    const own = await h.run(h.keys.PARTNER, READ, { id: prediction.id });
    expect(own.data!.prediction).toEqual({ id: prediction.id, probabilityAll: prediction.probabilityAll });
    expect((await h.run(otherPartner, READ, { id: prediction.id })).code).toBe('NOT_FOUND');
    expect((await h.run(h.keys.SCIENTIST, READ, { id: prediction.id })).data!.prediction.id).toBe(
      prediction.id,
    );
  });

  it('asks for exactly one image source, and keeps dataset images from partners', async () => {
    const base64 = cell.bytes.toString('base64');
    const none = await h.run(h.keys.PARTNER, PREDICT, { input: {} });
    expect(none.code).toBe('BAD_USER_INPUT');
    const two = await h.run(h.keys.PARTNER, PREDICT, { input: { imageBase64: base64, uploadId: 'up-x' } });
    expect(two.errors[0].message).toBe(
      'Give exactly one of imageBase64, imageId (with datasetId) or uploadId.',
    );
    const byReference = await h.run(h.keys.PARTNER, PREDICT, { input: { imageId: 'i', datasetId: 'ds-x' } });
    expect(byReference.code).toBe('NOT_FOUND');
  });

  it('refuses a batch over LYMPHOSCOPE_MAX_BATCH and the review queue to partners', async () => {
    const base64 = cell.bytes.toString('base64');
    const batch = await h.run(
      h.keys.PARTNER,
      'mutation($inputs: [PredictInput!]!) { predictBatch(inputs: $inputs) { id } }',
      {
        inputs: [0, 1, 2].map(() => ({ imageBase64: base64, explain: false })),
      },
    );
    expect(batch.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await h.run(h.keys.PARTNER, '{ reviewQueue { edges { node { id } } } }')).code).toBe('FORBIDDEN');
  });
});
