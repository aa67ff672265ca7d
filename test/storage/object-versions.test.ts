import { startTestS3, type TestS3 } from '../helpers/s3';

/**
 * The calls deletion and retention rely on, against the local S3 over HTTP: ListObjectVersions,
 * DeleteObjects with version ids, and tags set by PutObject. The local server keeps no versions, so
 * each object is its one `null` version (s3rver-compat.ts); the code path is the one used on AWS.
 */
let s3: TestS3;
beforeAll(async () => (s3 = await startTestS3()));
afterAll(() => s3?.stop());

describe('object versions', () => {
  it('lists every object under a prefix as a version, across pages', async () => {
    const keys = Array.from({ length: 1003 }, (_, i) => `versions/a/${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 10) {
      await Promise.all(keys.slice(i, i + 10).map((k) => s3.store.put(k, 'x')));
    }
    await s3.store.put('versions/b/outside', 'y');
    const versions = await s3.store.listVersions('versions/a/');
    expect(versions.map((v) => v.key)).toEqual(keys);
    expect(versions.every((v) => v.versionId === 'null' && v.isLatest && !v.isDeleteMarker)).toBe(true);
    expect(await s3.store.listVersions('versions/a/', { limit: 10 })).toHaveLength(10);
  });

  it('deletes exactly the versions named, in batches of 1000, and again without error', async () => {
    const versions = await s3.store.listVersions('versions/a/');
    expect(await s3.store.deleteVersions(versions)).toBe(1003);
    expect(await s3.store.listVersions('versions/')).toEqual([
      expect.objectContaining({ key: 'versions/b/outside' }),
    ]);
    await expect(s3.store.deleteVersions(versions.slice(0, 3))).resolves.toBe(3);
    expect(await s3.store.deleteVersions([])).toBe(0);
  });
});

describe('tags', () => {
  it('stores the tags a PUT carries, replaces them on the next PUT and forgets them on delete', async () => {
    await s3.store.put('tags/one', 'x', { tags: { 'lymphoscope-retention': 'pixels-30d' } });
    expect(await s3.store.getTags('tags/one')).toEqual({ 'lymphoscope-retention': 'pixels-30d' });
    await s3.store.put('tags/one', 'y', { tags: { a: '1', b: '2' } });
    expect(await s3.store.getTags('tags/one')).toEqual({ a: '1', b: '2' });
    await s3.store.delete('tags/one');
    expect(await s3.store.getTags('tags/one')).toBeNull();
    await s3.store.put('tags/one', 'z');
    expect(await s3.store.getTags('tags/one')).toEqual({});
  });

  it('refuses a tag S3 would refuse', async () => {
    await expect(s3.store.put('tags/bad', 'x', { tags: { 'a&b': 'c' } })).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
    });
    expect(await s3.store.head('tags/bad')).toBeNull();
  });
});
