import { datasetServiceOn } from '../helpers/dataset-service';
import { ErrorCode } from '../../src/errors';
import type { Caller } from '../../src/services/auth';
import { DatasetService } from '../../src/services/datasets';
import { layout } from '../../src/storage/layout';
import { sampleImages } from '../helpers/sample';
import { startTestS3, type TestS3 } from '../helpers/s3';
import { postUpload } from '../helpers/upload';

/** DatasetService against a real local S3 with real C-NMC cells: adds, uploads confirmed into a dataset, removal. */
describe('DatasetService', () => {
  let s3: TestS3;
  let datasets: DatasetService;
  const scientist: Caller = { keyId: 'key-scientist', role: 'SCIENTIST', partnerId: 'key-scientist' };
  const cells = sampleImages();

  beforeAll(async () => {
    s3 = await startTestS3();
    ({ datasets } = datasetServiceOn(s3.store));
  });
  afterAll(() => s3?.stop());

  const post = async (grant: { url: string; fields: Record<string, string> }, bytes: Uint8Array) =>
    (
      await postUpload(
        { url: grant.url, fields: Object.entries(grant.fields).map(([name, value]) => ({ name, value })) },
        bytes,
        'image/bmp',
      )
    ).status;

  it('checks a dataset name and description, and stores the trimmed name', async () => {
    expect((await datasets.create(scientist, '  marrow 2026  ')).name).toBe('marrow 2026');
    await expect(datasets.create(scientist, '   ')).rejects.toMatchObject({ details: { field: 'name' } });
    await expect(datasets.create(scientist, 'x', 'd'.repeat(2001))).rejects.toMatchObject({
      details: { field: 'description' },
    });
  });

  it('confirms an upload into the dataset once: the image is stored, the uploaded bytes removed', async () => {
    const dataset = await datasets.create(scientist, 'uploads');
    const grant = await datasets.createUpload(
      scientist,
      { datasetId: dataset.id, label: 'NORMAL', filename: cells.at(-1)!.name, contentType: 'image/bmp' },
      60,
    );
    expect(await post(grant, cells.at(-1)!.bytes)).toBe(204);
    const { image, duplicate } = await datasets.confirmUpload(scientist, grant.upload.uploadId);
    expect(duplicate).toBe(false);
    expect(image).toMatchObject({
      datasetId: dataset.id,
      label: 'NORMAL',
      width: 450,
      height: 450,
      format: 'bmp',
    });
    expect(await s3.store.head(layout.uploadObject(grant.upload.uploadId))).toBeNull();
    expect((await datasets.imageRefs(dataset.id)).map((r) => r.imageId)).toEqual([image.id]);
    await expect(datasets.confirmUpload(scientist, grant.upload.uploadId)).rejects.toMatchObject({
      code: ErrorCode.CONFLICT,
    });
  });

  it('removes an upload that is not an image, and its confirmation, so nothing invalid stays', async () => {
    const dataset = await datasets.create(scientist, 'bad uploads');
    const grant = await datasets.createUpload(
      scientist,
      { datasetId: dataset.id, label: 'ALL', contentType: 'image/bmp' },
      60,
    );
    expect(await post(grant, Buffer.from('BM this is not really a bitmap'))).toBe(204);
    await expect(datasets.confirmUpload(scientist, grant.upload.uploadId)).rejects.toMatchObject({
      code: ErrorCode.UNSUPPORTED_IMAGE,
    });
    expect(await s3.store.head(layout.uploadObject(grant.upload.uploadId))).toBeNull();
    expect(await s3.store.head(layout.uploadConfirmation(grant.upload.uploadId))).toBeNull();
    expect(await datasets.imageRefs(dataset.id)).toEqual([]);
  });

  it('refuses an upload grant for a dataset without a label or that does not exist', async () => {
    const dataset = await datasets.create(scientist, 'grants');
    await expect(
      datasets.createUpload(scientist, { datasetId: dataset.id, contentType: 'image/bmp' }, 60),
    ).rejects.toMatchObject({ details: { field: 'label' } });
    await expect(
      datasets.createUpload(
        scientist,
        { datasetId: 'ds-missing', label: 'ALL', contentType: 'image/bmp' },
        60,
      ),
    ).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    await expect(
      datasets.createUpload(scientist, { datasetId: dataset.id, label: 'ALL', contentType: 'image/gif' }, 60),
    ).rejects.toMatchObject({ details: { field: 'contentType' } });
  });

  it('removes an image with its content marker, so the same bytes can be added again as new', async () => {
    const dataset = await datasets.create(scientist, 'removal');
    const add = () =>
      datasets.addImageBytes(scientist, {
        datasetId: dataset.id,
        label: 'ALL',
        bytes: cells[3].bytes,
        source: 'test',
      });
    const { image } = await add();
    expect((await add()).duplicate).toBe(true);
    expect(await datasets.removeImage(scientist, dataset.id, image.id)).toBe(true);
    expect(await datasets.imageRefs(dataset.id)).toEqual([]);
    expect((await add()).duplicate).toBe(false);
    await expect(datasets.removeImage(scientist, dataset.id, 'no-such-image')).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
  });
});
