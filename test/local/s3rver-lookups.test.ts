import { createHash } from 'crypto';
import { mkdtemp, rm, unlink, writeFile } from 'fs/promises';
import os from 'os';
import path from 'path';
import type S3rver from 's3rver';
import { lookUpSynchronously, makePutsAtomic } from '../../src/local/s3rver-compat';

// s3rver's own store (the one startLocalS3 patches); it ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const FilesystemStore = require('s3rver/lib/stores/filesystem') as new (directory: string) => S3rver.Store;

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

/**
 * lookUpSynchronously answers s3rver's per-request lookups without libuv's thread pool. Two stores on
 * one directory, s3rver's as it is and the patched one, must give the same answers (or the same error)
 * for every case a request can meet: objects with and without metadata, an object whose MD5 file a crash
 * removed, a missing object or bucket, a bucket path that is a file, configurations present and absent.
 */
describe('lookUpSynchronously', () => {
  let directory: string;
  let plain: S3rver.Store;
  let patched: S3rver.Store;
  const bucket = 'lookups';

  beforeAll(async () => {
    directory = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-lookups-'));
    plain = new FilesystemStore(directory);
    patched = new FilesystemStore(directory);
    makePutsAtomic(patched);
    lookUpSynchronously(patched);
    await (plain as unknown as { putBucket(name: string): Promise<unknown> }).putBucket(bucket);
    await patched.putObject({
      bucket,
      key: 'a/with-metadata.json',
      content: Buffer.from('{"a":1}'),
      metadata: { 'content-type': 'application/json', 'x-amz-meta-owner': 'p1', 'x-ignored': 'no' },
    });
    await patched.putObject({ bucket, key: 'plain', content: Buffer.from('bytes'), metadata: {} });
    await patched.putObject({ bucket, key: 'crashed', content: Buffer.from('lost md5'), metadata: {} });
    await unlink(patched.getResourcePath(bucket, 'crashed', 'object.md5'));
    await writeFile(
      patched.getResourcePath(bucket, 'plain', 'tagging.xml'),
      '<Tagging><TagSet><Tag><Key>retention</Key><Value>pixels</Value></Tag></TagSet></Tagging>',
    );
    await writeFile(path.join(directory, 'not-a-bucket'), 'a file where a bucket would be');
  });
  afterAll(() => rm(directory, { recursive: true, force: true }));

  /** The answer, or the error's code, of one lookup on a store. */
  async function outcome(lookup: (store: S3rver.Store) => Promise<unknown>, store: S3rver.Store) {
    try {
      return { value: JSON.parse(JSON.stringify(await lookup(store))) as unknown };
    } catch (error) {
      return { error: (error as NodeJS.ErrnoException).code ?? String(error) };
    }
  }

  const cases: Array<[string, (store: S3rver.Store) => Promise<unknown>]> = [
    ['metadata of an object with stored metadata', (s) => s.getMetadata(bucket, 'a/with-metadata.json')],
    ['metadata of an object without', (s) => s.getMetadata(bucket, 'plain')],
    ['metadata of an object whose MD5 file is gone', (s) => s.getMetadata(bucket, 'crashed')],
    ['metadata of a missing object', (s) => s.getMetadata(bucket, 'missing')],
    ['metadata under a missing bucket', (s) => s.getMetadata('no-such-bucket', 'plain')],
    ['a bucket that exists', (s) => s.getBucket(bucket)],
    ['a missing bucket', (s) => s.getBucket('no-such-bucket')],
    ['a bucket path that is a file', (s) => s.getBucket('not-a-bucket')],
    ["a bucket's website configuration, absent", (s) => s.getSubresource(bucket, undefined, 'website')],
    ["a bucket's CORS configuration, absent", (s) => s.getSubresource(bucket, undefined, 'cors')],
    ["an object's tags, present", (s) => s.getSubresource(bucket, 'plain', 'tagging')],
    ["an object's tags, absent", (s) => s.getSubresource(bucket, 'a/with-metadata.json', 'tagging')],
  ];

  it.each(cases)('answers %s as s3rver does', async (_name, lookup) => {
    const expected = await outcome(lookup, plain);
    expect(await outcome(lookup, patched)).toEqual(expected);
  });

  it('is what the cases above compare: values where there are some, and both kinds of error', async () => {
    const outcomes = await Promise.all(cases.map(([, lookup]) => outcome(lookup, patched)));
    expect(outcomes.filter((o) => 'error' in o).map((o) => o.error)).toEqual(['ENOENT', 'ENOENT']);
    const metadata = outcomes[0] as { value: Record<string, unknown> };
    expect(metadata.value).toMatchObject({
      'content-type': 'application/json',
      'x-amz-meta-owner': 'p1',
      etag: `"${md5('{"a":1}')}"`,
      'content-length': 7,
    });
    expect(outcomes[11]).toEqual({ value: null });
    expect(outcomes[10]).not.toEqual({ value: null });
  });

  it('stores the MD5 again for an object that lost it, as s3rver does', async () => {
    await unlink(patched.getResourcePath(bucket, 'plain', 'object.md5')).catch(() => undefined);
    const first = await patched.getMetadata(bucket, 'plain');
    expect(first.etag).toBe(`"${md5('bytes')}"`);
    // Read back through the fast path this time.
    expect((await patched.getMetadata(bucket, 'plain')).etag).toBe(first.etag);
  });
});
