import { createHash } from 'node:crypto';
import { JobCannotSucceed, loadSnapshot } from '../../src/services/training-data';
import type { Snapshot, SnapshotItem } from '../../src/services/training';
import { sampleImages } from '../helpers/sample';
import { startTestS3, type TestS3 } from '../helpers/s3';

/** A training job's snapshot read back from the real local S3 server: real C-NMC cells, one image gone. */
describe('loadSnapshot', () => {
  let s3: TestS3;
  const cells = sampleImages();
  const all = cells.filter((c) => c.label === 'ALL').slice(0, 3);
  const normal = cells.filter((c) => c.label === 'NORMAL').slice(0, 3);
  const key = (name: string) => `datasets/d1/images/${name}`;

  beforeAll(async () => {
    s3 = await startTestS3();
    for (const c of [...all, ...normal]) await s3.store.put(key(c.name), c.bytes);
  });
  afterAll(() => s3?.stop());

  const item = (name: string, label: 0 | 1, split: SnapshotItem['split']): SnapshotItem => ({
    key: key(name),
    imageId: name,
    label,
    subjectId: `subject-${name}`,
    split,
  });
  const snapshot = (items: SnapshotItem[]): Snapshot => ({
    snapshotId: 's1',
    datasetId: 'd1',
    createdAt: new Date().toISOString(),
    items,
  });

  it("decodes every cell into its split in the snapshot's order, and lists the image that is gone", async () => {
    const items = [
      item(all[0].name, 1, 'train'),
      item(normal[0].name, 0, 'train'),
      item(all[1].name, 1, 'train'),
      item('UID_gone.bmp', 0, 'train'),
      item(normal[1].name, 0, 'validation'),
      item(all[2].name, 1, 'test'),
    ];
    const loaded = await loadSnapshot(s3.store, snapshot(items), 32);

    expect(loaded.train.map((c) => c.id)).toEqual([key(all[0].name), key(normal[0].name), key(all[1].name)]);
    expect(loaded.validation.map((c) => c.id)).toEqual([key(normal[1].name)]);
    expect(loaded.test.map((c) => c.id)).toEqual([key(all[2].name)]);
    expect(loaded.rejected).toEqual([key('UID_gone.bmp')]);

    const first = loaded.train[0];
    expect(first).toMatchObject({ label: 1, subjectId: `subject-${all[0].name}` });
    expect(first.pixels).toHaveLength(32 * 32 * 3);
    expect(first.morphology.areaPx).toBeGreaterThan(1000);
    expect(loaded.sha256.get(key(all[0].name))).toBe(createHash('sha256').update(all[0].bytes).digest('hex'));
    // The class norms come from the train split only: both classes are there.
    expect(loaded.norms).not.toBeNull();
  });

  it('fails the job, not a retry, when a split is left empty', async () => {
    const items = [
      item(all[0].name, 1, 'train'),
      item('UID_gone.bmp', 0, 'validation'),
      item(normal[2].name, 0, 'test'),
    ];
    await expect(loadSnapshot(s3.store, snapshot(items), 32)).rejects.toBeInstanceOf(JobCannotSucceed);
  });
});
