import { createHash, randomBytes } from 'crypto';
import { ErrorCode, LymphoscopeError } from '../../src/errors';
import { type ObjectStore, PreconditionFailed } from '../../src/storage/object-store';
import { createS3ObjectStore } from '../../src/storage/s3-object-store';
import { startTestS3, TestS3 } from '../helpers/s3';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(() => s3.stop());

const quotedMd5 = (body: Uint8Array | string) => `"${createHash('md5').update(body).digest('hex')}"`;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof PreconditionFailed) return 'PreconditionFailed';
    if (err instanceof LymphoscopeError) return err.code;
    throw err;
  }
  return 'resolved';
}

describe('objects', () => {
  it('round-trips bytes, content type and metadata, with the quoted MD5 as ETag everywhere', async () => {
    // Larger than one socket read, so a body that was stored before it was fully written would show.
    const body = randomBytes(700_000);
    const { etag } = await s3.store.put('objects/cell.bmp', body, {
      contentType: 'image/bmp',
      metadata: { subject: 'H23', sha256: createHash('sha256').update(body).digest('hex') },
    });
    expect(etag).toBe(quotedMd5(body));

    const got = await s3.store.get('objects/cell.bmp');
    expect(got).not.toBeNull();
    expect(got!.body.equals(body)).toBe(true);
    expect(got!.info).toMatchObject({
      key: 'objects/cell.bmp',
      size: body.length,
      etag,
      contentType: 'image/bmp',
      metadata: { subject: 'H23', sha256: createHash('sha256').update(body).digest('hex') },
    });
    expect(got!.info.lastModified).toBeInstanceOf(Date);

    const head = await s3.store.head('objects/cell.bmp');
    expect(head).toEqual(got!.info);

    const listed = await s3.store.listPage('objects/');
    expect(listed.items.map((o) => [o.key, o.size, o.etag])).toEqual([
      ['objects/cell.bmp', body.length, etag],
    ]);
  });

  it('stores strings as UTF-8', async () => {
    await s3.store.put('objects/note.txt', 'blast, clefted – ünïcode');
    expect((await s3.store.get('objects/note.txt'))!.body.toString('utf8')).toBe('blast, clefted – ünïcode');
  });

  it('answers null for a missing key, and deletes idempotently', async () => {
    expect(await s3.store.get('objects/missing')).toBeNull();
    expect(await s3.store.head('objects/missing')).toBeNull();
    await s3.store.put('objects/doomed', 'x');
    await s3.store.delete('objects/doomed');
    await s3.store.delete('objects/doomed');
    expect(await s3.store.get('objects/doomed')).toBeNull();
  });

  it('refuses empty and path-like keys', async () => {
    expect(await codeOf(s3.store.put('', 'x'))).toBe(ErrorCode.BAD_USER_INPUT);
    expect(await codeOf(s3.store.put('datasets/../models/x', 'x'))).toBe(ErrorCode.BAD_USER_INPUT);
    expect(await codeOf(s3.store.get('./x'))).toBe(ErrorCode.BAD_USER_INPUT);
  });

  it('rejects metadata S3 would mangle or refuse', async () => {
    expect(await codeOf(s3.store.put('objects/m', 'x', { metadata: { Subject: 'H1' } }))).toBe(
      ErrorCode.BAD_USER_INPUT,
    );
    expect(await codeOf(s3.store.put('objects/m', 'x', { metadata: { source: 'zürich.bmp' } }))).toBe(
      ErrorCode.BAD_USER_INPUT,
    );
    expect(await codeOf(s3.store.put('objects/m', 'x', { metadata: { big: 'a'.repeat(3000) } }))).toBe(
      ErrorCode.PAYLOAD_TOO_LARGE,
    );
    expect(await s3.store.head('objects/m')).toBeNull();
  });

  it('copies bytes and metadata server-side', async () => {
    await s3.store.put('copy/from', 'weights', {
      contentType: 'application/octet-stream',
      metadata: { epoch: '3' },
    });
    await s3.store.copy('copy/from', 'copy/to');
    const copied = await s3.store.get('copy/to');
    expect(copied!.body.toString()).toBe('weights');
    expect(copied!.info).toMatchObject({ contentType: 'application/octet-stream', metadata: { epoch: '3' } });

    expect(await codeOf(s3.store.copy('copy/from', 'copy/to', { ifNoneMatch: '*' }))).toBe(
      'PreconditionFailed',
    );
    await s3.store.copy('copy/from', 'copy/fresh', { ifNoneMatch: '*' });
    expect(await codeOf(s3.store.copy('copy/nothing-here', 'copy/x'))).toBe(ErrorCode.NOT_FOUND);
  });
});

describe('listing', () => {
  const prefix = 'list/';
  const keys = Array.from({ length: 25 }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
  beforeAll(async () => {
    await Promise.all(keys.map((key) => s3.store.put(key, key)));
    await s3.store.put('list-other/000', 'not under the prefix');
  });

  it('pages through more objects than one page holds, in key order', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await s3.store.listPage(prefix, { maxKeys: 10, continuationToken: token });
      expect(page.items.length).toBeLessThanOrEqual(10);
      seen.push(...page.items.map((o) => o.key));
      token = page.nextContinuationToken;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(seen).toEqual(keys);
  });

  it('starts after a given key', async () => {
    const page = await s3.store.listPage(prefix, { startAfter: `${prefix}019` });
    expect(page.items.map((o) => o.key)).toEqual(keys.slice(20));
    expect(page.nextContinuationToken).toBeUndefined();
  });

  it('bounds maxKeys', async () => {
    expect(await codeOf(s3.store.listPage(prefix, { maxKeys: 0 }))).toBe(ErrorCode.BAD_USER_INPUT);
    expect(await codeOf(s3.store.listPage(prefix, { maxKeys: 1001 }))).toBe(ErrorCode.BAD_USER_INPUT);
  });

  it('lists all, or the first `limit`', async () => {
    expect((await s3.store.listAll(prefix)).map((o) => o.key)).toEqual(keys);
    expect((await s3.store.listAll(prefix, { limit: 24 })).map((o) => o.key)).toEqual(keys.slice(0, 24));
    expect(await codeOf(s3.store.listAll(prefix, { limit: 0 }))).toBe(ErrorCode.BAD_USER_INPUT);
  });

  it('follows continuation tokens past S3’s 1000-key page', async () => {
    const many = Array.from({ length: 1003 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < many.length; i += 50) {
      await Promise.all(many.slice(i, i + 50).map((key) => s3.store.put(key, '')));
    }
    expect((await s3.store.listAll('many/')).map((o) => o.key)).toEqual(many);
    expect((await s3.store.listAll('many/', { limit: 1001 })).map((o) => o.key)).toEqual(many.slice(0, 1001));
  });
});

// Both paths a PUT can take: without the SDK's client (the default) and through it (LYMPHOSCOPE_S3_REQUESTS=sdk).
describe.each(['direct', 'sdk'] as const)('conditional writes (%s)', (requests) => {
  let store: ObjectStore;
  beforeAll(() => {
    store = createS3ObjectStore({ ...s3.config, requests });
  });

  it('creates once', async () => {
    await store.put(`cond/${requests}/once`, 'first', { ifNoneMatch: '*' });
    expect(await codeOf(store.put(`cond/${requests}/once`, 'second', { ifNoneMatch: '*' }))).toBe(
      'PreconditionFailed',
    );
    expect((await store.get(`cond/${requests}/once`))!.body.toString()).toBe('first');
  });

  it('compares and swaps on the ETag', async () => {
    const v1 = await store.put(`cond/${requests}/cas`, 'v1');
    const v2 = await store.put(`cond/${requests}/cas`, 'v2', { ifMatch: v1.etag });
    expect(v2.etag).toBe(quotedMd5('v2'));
    expect(await codeOf(store.put(`cond/${requests}/cas`, 'stale', { ifMatch: v1.etag }))).toBe(
      'PreconditionFailed',
    );
    // S3 compares ETags without their quotes.
    await store.put(`cond/${requests}/cas`, 'v3', { ifMatch: v2.etag.replace(/"/g, '') });
    expect((await store.get(`cond/${requests}/cas`))!.body.toString()).toBe('v3');
  });

  it('fails a swap on a key that was deleted', async () => {
    const { etag } = await store.put(`cond/${requests}/gone`, 'x');
    await store.delete(`cond/${requests}/gone`);
    expect(await codeOf(store.put(`cond/${requests}/gone`, 'y', { ifMatch: etag }))).toBe(
      'PreconditionFailed',
    );
    expect(await store.head(`cond/${requests}/gone`)).toBeNull();
  });

  it('lets exactly one of many concurrent creates win', async () => {
    const contenders = Array.from({ length: 12 }, (_, i) => `writer-${i}`);
    const results = await Promise.allSettled(
      contenders.map((body) => store.put(`cond/${requests}/race`, body, { ifNoneMatch: '*' })),
    );
    const winners = contenders.filter((_, i) => results[i].status === 'fulfilled');
    expect(winners).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PreconditionFailed);
    }
    expect((await store.get(`cond/${requests}/race`))!.body.toString()).toBe(winners[0]);
  });
});

describe('presigned URLs', () => {
  it('accepts an upload by a plain HTTP form POST, with the content type and size it was granted', async () => {
    const { url, fields } = await s3.store.presignPost('uploads/u1', {
      expiresInSeconds: 300,
      contentType: 'image/png',
      maxBytes: 4096,
    });
    expect(Object.keys(fields)[0]).toBe('key');
    expect(fields['X-Amz-Algorithm']).toBe('AWS4-HMAC-SHA256');
    const policy = JSON.parse(Buffer.from(fields.Policy, 'base64').toString());
    expect(policy.conditions).toEqual(
      expect.arrayContaining([
        ['content-length-range', 1, 4096],
        { 'Content-Type': 'image/png' },
        { key: 'uploads/u1' },
      ]),
    );
    expect(Date.parse(policy.expiration) - Date.now()).toBeGreaterThan(290_000);
    expect(Date.parse(policy.expiration) - Date.now()).toBeLessThanOrEqual(300_000);

    const bytes = randomBytes(4096);
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('file', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'cell.png');
    const response = await fetch(url, { method: 'POST', body: form });
    expect(response.status).toBe(204);
    expect(response.headers.get('etag')).toBe(quotedMd5(bytes));

    const stored = await s3.store.get('uploads/u1');
    expect(stored!.body.equals(bytes)).toBe(true);
    expect(stored!.info.contentType).toBe('image/png');
  });

  it('serves a download by plain HTTP GET, with the file name asked for', async () => {
    await s3.store.put('downloads/heatmap.png', Buffer.from([137, 80, 78, 71]), { contentType: 'image/png' });
    const url = await s3.store.presignGet('downloads/heatmap.png', {
      expiresInSeconds: 60,
      contentDisposition: 'attachment; filename="heatmap.png"',
    });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="heatmap.png"');
    expect(Buffer.from(await response.arrayBuffer())).toEqual(Buffer.from([137, 80, 78, 71]));
  });

  it('bounds the lifetime', async () => {
    expect(
      await codeOf(
        s3.store.presignPost('uploads/u2', { expiresInSeconds: 0, contentType: 'image/png', maxBytes: 1 }),
      ),
    ).toBe(ErrorCode.BAD_USER_INPUT);
    expect(await codeOf(s3.store.presignGet('uploads/u2', { expiresInSeconds: 8 * 24 * 3600 }))).toBe(
      ErrorCode.BAD_USER_INPUT,
    );
  });
});

describe('health', () => {
  it('pings a reachable bucket', async () => {
    expect(await s3.store.ping()).toBe(true);
  });

  it('reports a missing bucket as unreachable rather than throwing', async () => {
    const other = createS3ObjectStore({ ...s3.config, bucket: 'no-such-bucket' });
    expect(await other.ping()).toBe(false);
  });
});
