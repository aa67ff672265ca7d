import { ErrorCode } from '../../src/errors';
import { ANONYMOUS_ADMIN, type Caller } from '../../src/services/auth';
import { sampleImages } from '../helpers/sample';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';
import { registerUntrainedModel } from '../helpers/untrained-model';
import { postUpload } from '../helpers/upload';

/**
 * PredictionService with an untrained network in production and real C-NMC cells, over a local S3: the
 * three ways an image arrives (inline, dataset, confirmed upload) give the same answer for the same
 * bytes, and a batch answers in order.
 */
describe('PredictionService', () => {
  let h: ResolverHarness;
  let partner: Caller;
  const scientist: Caller = { keyId: 'key-scientist', role: 'SCIENTIST', partnerId: 'key-scientist' };
  const cells = sampleImages();

  beforeAll(async () => {
    h = await startResolverHarness();
    const card = await registerUntrainedModel(h.services, { notes: 'untrained, for prediction tests' });
    await h.services.models.promote(ANONYMOUS_ADMIN, card.version);
    partner = await h.services.auth.authenticate(h.keys.PARTNER);
  });
  afterAll(() => h?.stop());

  /** A presigned upload of `bytes` for predict, POSTed as a browser would; confirmed unless told not to. */
  async function upload(caller: Caller, bytes: Uint8Array, confirm = true): Promise<string> {
    const { upload, url, fields } = await h.services.datasets.createUpload(
      caller,
      { contentType: 'image/bmp' },
      60,
    );
    const form = { url, fields: Object.entries(fields).map(([name, value]) => ({ name, value })) };
    expect((await postUpload(form, bytes, 'image/bmp')).status).toBe(204);
    if (confirm) await h.services.datasets.confirmUpload(caller, upload.uploadId);
    return upload.uploadId;
  }

  it('gives the same probability for the same cell sent inline, from a dataset and as an upload', async () => {
    const cell = cells[5];
    const inline = await h.services.predictions.predict(partner, {
      imageBase64: cell.bytes.toString('base64'),
      explain: false,
    });
    const uploadId = await upload(partner, cell.bytes);
    const uploaded = await h.services.predictions.predict(partner, { uploadId, explain: false });
    const datasetId = (await h.services.datasets.create(scientist, 'one cell')).id;
    const { image } = await h.services.datasets.addImageBytes(scientist, {
      datasetId,
      label: cell.label,
      bytes: cell.bytes,
      source: 'test',
    });
    const fromDataset = await h.services.predictions.predict(scientist, {
      datasetId,
      imageId: image.id,
      explain: false,
    });
    expect([inline.source, uploaded.source, fromDataset.source]).toEqual([
      'inline',
      `upload:${uploadId}`,
      `dataset:${datasetId}/${image.id}`,
    ]);
    expect(uploaded.probabilityAll).toBe(inline.probabilityAll);
    expect(fromDataset.probabilityAll).toBe(inline.probabilityAll);
  });

  it("refuses an upload not confirmed yet, and another partner's upload as if it did not exist", async () => {
    const unconfirmed = await upload(partner, cells[6].bytes, false);
    await expect(h.services.predictions.predict(partner, { uploadId: unconfirmed })).rejects.toThrow(
      /not confirmed yet/,
    );
    const other = await h.services.auth.authenticate(
      (await h.services.auth.create(ANONYMOUS_ADMIN, 'other lab', 'PARTNER')).secret,
    );
    const theirs = await upload(other, cells[7].bytes);
    await expect(h.services.predictions.predict(partner, { uploadId: theirs })).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
  });

  it('answers a batch in the order given, one record per image, and lists the newest first', async () => {
    const batch = [cells[0], cells.at(-1)!, cells[1]].map((c) => ({
      imageBase64: c.bytes.toString('base64'),
      explain: false,
    }));
    const results = await h.services.predictions.predictBatch(partner, batch);
    expect(results).toHaveLength(3);
    const single = await h.services.predictions.predict(partner, batch[1]);
    expect(results[1].probabilityAll).toBe(single.probabilityAll);
    const listed = await h.services.predictions.list(partner, {}, 4);
    const ids = listed.items.map((i) => i.node.id);
    expect(ids[0]).toBe(single.id);
    expect(new Set(ids.slice(1))).toEqual(new Set(results.map((r) => r.id)));
    await expect(h.services.predictions.predictBatch(partner, [])).rejects.toMatchObject({
      code: ErrorCode.BAD_USER_INPUT,
    });
  });
});
