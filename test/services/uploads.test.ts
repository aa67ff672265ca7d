import { ErrorCode } from '../../src/errors';
import type { Caller } from '../../src/services/auth';
import { UploadService } from '../../src/services/uploads';
import { JsonDocuments } from '../../src/storage/json-documents';
import { layout } from '../../src/storage/layout';
import { sampleImages } from '../helpers/sample';
import { startTestS3, type TestS3 } from '../helpers/s3';
import { postUpload } from '../helpers/upload';

/** Presigned uploads against a real local S3: the form is POSTed over HTTP as a browser would. */
describe('UploadService', () => {
  let s3: TestS3;
  let uploads: UploadService;
  const partner: Caller = { keyId: 'key-partner-a', role: 'PARTNER', partnerId: 'partner-a' };
  const otherPartner: Caller = { keyId: 'key-partner-b', role: 'PARTNER', partnerId: 'partner-b' };
  const scientist: Caller = { keyId: 'key-scientist', role: 'SCIENTIST', partnerId: 'lab' };
  const cell = sampleImages()[0];
  const limit = cell.bytes.length + 10;

  beforeAll(async () => {
    s3 = await startTestS3();
    uploads = new UploadService(s3.store, new JsonDocuments(s3.store), { uploadBytes: limit });
  });
  afterAll(() => s3?.stop());

  const intent = { datasetId: null, label: null, subjectId: null, contentType: 'image/bmp' };
  const post = (grant: { url: string; fields: Record<string, string> }, bytes: Uint8Array) =>
    postUpload(
      { url: grant.url, fields: Object.entries(grant.fields).map(([name, value]) => ({ name, value })) },
      bytes,
      'image/bmp',
    );

  it('refuses a content type that is not an image format we read, before writing anything', async () => {
    const before = await s3.listKeys();
    await expect(uploads.create(partner, { ...intent, contentType: 'text/html' }, 60)).rejects.toMatchObject({
      code: ErrorCode.BAD_USER_INPUT,
      details: { field: 'contentType' },
    });
    expect(await s3.listKeys()).toEqual(before);
  });

  it('stores the record, takes the bytes through the form, and reads them back once confirmed', async () => {
    const { upload, url, fields } = await uploads.create(partner, intent, 60);
    expect(upload).toMatchObject({ datasetId: null, createdBy: partner.keyId, filename: null });
    expect(Date.parse(upload.expiresAt) - Date.parse(upload.createdAt)).toBe(60_000);
    await expect(uploads.readBytes(upload)).rejects.toMatchObject({ code: ErrorCode.BAD_USER_INPUT });
    expect((await post({ url, fields }, cell.bytes)).status).toBe(204);
    expect(await uploads.readBytes(upload)).toEqual(cell.bytes);

    await expect(uploads.readConfirmed(partner, upload.uploadId)).rejects.toThrow(/not confirmed yet/);
    await uploads.claimConfirmation(partner, upload.uploadId);
    expect(await uploads.readConfirmed(partner, upload.uploadId)).toEqual(cell.bytes);
  });

  it('lets exactly one of several concurrent confirmations win; a released one may be claimed again', async () => {
    const { upload } = await uploads.create(partner, intent, 60);
    const outcomes = await Promise.allSettled(
      [0, 1, 2, 3].map(() => uploads.claimConfirmation(partner, upload.uploadId)),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes.filter((o) => o.status === 'rejected')) {
      expect((o as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.CONFLICT });
    }
    await uploads.releaseConfirmation(upload.uploadId);
    await expect(uploads.claimConfirmation(partner, upload.uploadId)).resolves.toBeUndefined();
  });

  it("hides a partner's upload from other partners but not from staff", async () => {
    const { upload } = await uploads.create(partner, intent, 60);
    await expect(uploads.get(otherPartner, upload.uploadId)).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
    await expect(uploads.get(scientist, upload.uploadId)).resolves.toEqual(upload);
    await expect(uploads.get(partner, 'up-does-not-exist')).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
  });

  it('deletes bytes over the limit that reached storage (as an S3 without a policy would take them)', async () => {
    const { upload } = await uploads.create(partner, intent, 60);
    // Written directly, past the POST policy: the check on read is the second line of defence.
    await s3.store.put(layout.uploadObject(upload.uploadId), new Uint8Array(limit + 1));
    await expect(uploads.readBytes(upload)).rejects.toMatchObject({
      code: ErrorCode.PAYLOAD_TOO_LARGE,
      details: { limit },
    });
    expect(await s3.store.head(layout.uploadObject(upload.uploadId))).toBeNull();
  });

  it('refuses to hand a dataset upload to predict', async () => {
    const { upload } = await uploads.create(scientist, { ...intent, datasetId: 'ds-x', label: 'ALL' }, 60);
    await uploads.claimConfirmation(scientist, upload.uploadId);
    await expect(uploads.readConfirmed(scientist, upload.uploadId)).rejects.toThrow(/went to a dataset/);
  });
});
