import { ErrorCode } from '../../src/errors';
import { ANONYMOUS_ADMIN, type Caller } from '../../src/services/auth';
import { layout } from '../../src/storage/layout';
import { sampleImages } from '../helpers/sample';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';
import { registerUntrainedModel } from '../helpers/untrained-model';

/**
 * Deleting patient data over a local S3 (which keeps object versions, like a versioned bucket): real
 * predictions of real C-NMC cells, and a dataset of them. test/e2e/patient-data.test.ts covers export,
 * erasure and resumption.
 */
describe('PatientDataService', () => {
  let h: ResolverHarness;
  let partner: Caller;
  let otherPartner: Caller;
  const scientist: Caller = { keyId: 'key-scientist', role: 'SCIENTIST', partnerId: 'key-scientist' };
  const cell = sampleImages()[0];

  beforeAll(async () => {
    h = await startResolverHarness();
    const card = await registerUntrainedModel(h.services, { notes: 'untrained, for deletion tests' });
    await h.services.models.promote(ANONYMOUS_ADMIN, card.version);
    partner = await h.services.auth.authenticate(h.keys.PARTNER);
    otherPartner = await h.services.auth.authenticate(
      (await h.services.auth.create(ANONYMOUS_ADMIN, 'other lab', 'PARTNER')).secret,
    );
  });
  afterAll(() => h?.stop());

  const versionsUnder = async (prefix: string) =>
    (await h.s3.store.listVersions(prefix, { limit: 1000 })).length;

  it('deletes every stored version of a prediction for its partner, and nothing for another', async () => {
    const prediction = await h.services.predictions.predict(partner, {
      imageBase64: cell.bytes.toString('base64'),
    });
    const files = layout.predictionFilesPrefix(partner.partnerId, prediction.id);
    const stored = await versionsUnder(files);
    expect(stored).toBeGreaterThanOrEqual(2); // the record and the image, the heat map too

    await expect(h.services.patientData.deletePrediction(otherPartner, prediction.id)).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
    expect(await versionsUnder(files)).toBe(stored);

    const job = await h.services.patientData.deletePrediction(partner, prediction.id);
    expect(job).toMatchObject({ kind: 'DELETE_PREDICTION', target: prediction.id, status: 'SUCCEEDED' });
    expect(await versionsUnder(files)).toBe(0);
    expect(await versionsUnder(layout.predictionOwner(prediction.id))).toBe(0);
    await expect(h.services.predictions.require(partner, prediction.id)).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
  });

  it('deletes a dataset with its images and markers; pinning with includePinned is for admins', async () => {
    const dataset = await h.services.datasets.create(scientist, 'to delete');
    await h.services.datasets.addImageBytes(scientist, {
      datasetId: dataset.id,
      label: 'ALL',
      bytes: cell.bytes,
      source: 'test',
    });
    expect(await versionsUnder(`datasets/${dataset.id}/`)).toBeGreaterThanOrEqual(3);
    await expect(h.services.patientData.deleteDataset(scientist, dataset.id, true)).rejects.toMatchObject({
      code: ErrorCode.FORBIDDEN,
    });
    const job = await h.services.patientData.deleteDataset(scientist, dataset.id, false);
    expect(job).toMatchObject({ kind: 'DELETE_DATASET', status: 'SUCCEEDED', kept: [] });
    expect(await versionsUnder(`datasets/${dataset.id}/`)).toBe(0);
    expect(await h.services.datasets.get(dataset.id)).toBeNull();
    await expect(h.services.patientData.deleteDataset(scientist, 'ds-never', false)).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
  });
});
