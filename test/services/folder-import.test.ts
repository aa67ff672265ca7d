import { datasetServiceOn } from '../helpers/dataset-service';
import { ErrorCode } from '../../src/errors';
import { createLogger } from '../../src/observability/log';
import type { Caller } from '../../src/services/auth';
import { DatasetService } from '../../src/services/datasets';
import { FolderImport } from '../../src/services/folder-import';
import { sampleImages } from '../helpers/sample';
import { startTestS3, type TestS3 } from '../helpers/s3';

/** Importing a folder of the bucket into a dataset, against a real local S3 with real C-NMC cells. */
describe('FolderImport', () => {
  let s3: TestS3;
  let datasets: DatasetService;
  let importer: FolderImport;
  const caller: Caller = { keyId: 'key-scientist', role: 'SCIENTIST', partnerId: 'lab' };
  const cells = sampleImages();
  const limits = {
    inlineImageBytes: 2 << 20,
    uploadBytes: 700_000,
    imageSide: 4096,
    importFiles: 8,
    pageSize: 100,
  };

  beforeAll(async () => {
    s3 = await startTestS3();
    ({ datasets } = datasetServiceOn(s3.store, limits));
    importer = new FolderImport(s3.store, datasets, limits, createLogger('silent'));
  });
  afterAll(() => s3?.stop());

  it('adds every readable image under all/ and hem/, and reports each file it did not add', async () => {
    const [allCell, hemCell] = [cells[0], cells.at(-1)!];
    await s3.store.put(`imports/run1/all/${allCell.name}`, allCell.bytes);
    await s3.store.put(`imports/run1/all/copy-of-${allCell.name}`, allCell.bytes);
    await s3.store.put(`imports/run1/hem/${hemCell.name}`, hemCell.bytes);
    await s3.store.put('imports/run1/hem/broken.bmp', allCell.bytes.subarray(0, 200));
    await s3.store.put('imports/run1/hem/huge.bmp', new Uint8Array(limits.uploadBytes + 1));
    await s3.store.put('imports/run1/notes.txt', Buffer.from('not an image'));
    await s3.store.put('imports/run1/other/cell.bmp', allCell.bytes);
    const dataset = await datasets.create(caller, 'imported');

    const report = await importer.run(caller, dataset.id, '/imports/run1');
    expect(report.accepted).toBe(2);
    expect(report.duplicates).toBe(1);
    const rejected = Object.fromEntries(report.rejected.map((r) => [r.key, r.code]));
    expect(rejected).toEqual({
      'imports/run1/hem/broken.bmp': ErrorCode.UNSUPPORTED_IMAGE,
      'imports/run1/hem/huge.bmp': ErrorCode.PAYLOAD_TOO_LARGE,
      'imports/run1/notes.txt': ErrorCode.BAD_USER_INPUT,
      'imports/run1/other/cell.bmp': ErrorCode.BAD_USER_INPUT,
    });
    const refs = await datasets.imageRefs(dataset.id);
    expect(refs.map((r) => r.label).sort()).toEqual(['ALL', 'NORMAL']);
    // The C-NMC names gave the subjects, stored as pseudonyms.
    expect(refs.every((r) => r.subjectId?.startsWith('s-'))).toBe(true);
  });

  it('keeps the first in listing order of files with the same bytes, however long each takes to read', async () => {
    // The C-NMC-named file is listed first ('U' sorts before lower case) but read slowly: added side by
    // side, a copy listed after it won, and the dataset kept the image without the subject the name gives.
    const slowStore = new Proxy(s3.store, {
      get(target, property) {
        if (property !== 'get') {
          const value: unknown = Reflect.get(target, property);
          return typeof value === 'function' ? value.bind(target) : value;
        }
        return async (key: string) => {
          if (key.includes('/UID_')) await new Promise((resolve) => setTimeout(resolve, 300));
          return target.get(key);
        };
      },
    });
    const slow = new FolderImport(slowStore, datasets, limits, createLogger('silent'));
    const cell = cells[0];
    await s3.store.put(`imports/order/all/${cell.name}`, cell.bytes);
    for (const copy of ['copy-a', 'copy-b', 'copy-c'])
      await s3.store.put(`imports/order/all/${copy}.bmp`, cell.bytes);
    const dataset = await datasets.create(caller, 'listing order');

    const report = await slow.run(caller, dataset.id, 'imports/order');
    expect(report).toMatchObject({ accepted: 1, duplicates: 3, rejected: [] });
    const refs = await datasets.imageRefs(dataset.id);
    expect(refs).toHaveLength(1);
    expect(refs[0].subjectId).toMatch(/^s-/);
  });

  it("refuses prefixes that are not a folder, or are inside Lymphoscope's own data, writing nothing", async () => {
    const dataset = await datasets.create(caller, 'refusals');
    const before = await s3.listKeys();
    for (const prefix of [
      '',
      '/',
      'imports/../datasets',
      'datasets/',
      'keys/by-hash',
      'models',
      'x'.repeat(600),
    ]) {
      await expect(importer.run(caller, dataset.id, prefix)).rejects.toMatchObject({
        code: ErrorCode.BAD_USER_INPUT,
        details: { field: 's3Prefix' },
      });
    }
    await expect(importer.run(caller, dataset.id, 'imports/empty')).rejects.toThrow(
      'No files under "imports/empty/".',
    );
    await expect(importer.run(caller, 'ds-missing', 'imports/run1')).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
    expect(await s3.listKeys()).toEqual(before);
  });

  it('refuses a folder over LYMPHOSCOPE_MAX_IMPORT_FILES before reading any file', async () => {
    for (let i = 0; i <= limits.importFiles; i++)
      await s3.store.put(`imports/big/all/${i}.bmp`, cells[0].bytes);
    const dataset = await datasets.create(caller, 'too many');
    await expect(importer.run(caller, dataset.id, 'imports/big')).rejects.toMatchObject({
      code: ErrorCode.PAYLOAD_TOO_LARGE,
      details: { limit: limits.importFiles },
    });
    expect(await datasets.imageRefs(dataset.id)).toEqual([]);
  });
});
