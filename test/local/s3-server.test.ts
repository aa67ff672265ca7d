import { createHash, randomBytes } from 'crypto';
import { existsSync } from 'fs';
import { request } from 'http';
import { join } from 'path';
import { startTestS3, TestS3 } from '../helpers/s3';

// The local server speaks plain S3 over HTTP; these requests carry no signature (s3rver lets
// anonymous requests through), so they test the server's behaviour without the SDK in between.

let s3: TestS3;
let objectUrl: (key: string) => string;
beforeAll(async () => {
  s3 = await startTestS3();
  objectUrl = (key) => `${s3.endpoint}/${s3.bucket}/${key}`;
});
afterAll(() => s3.stop());

const md5 = (body: Uint8Array | string) => createHash('md5').update(body).digest('hex');

async function put(key: string, body: BodyInit, headers: Record<string, string> = {}) {
  const response = await fetch(objectUrl(key), { method: 'PUT', body, headers });
  return { status: response.status, etag: response.headers.get('etag'), text: await response.text() };
}

describe('conditional PUT', () => {
  it('answers If-None-Match: * on an existing key with S3’s 412 PreconditionFailed', async () => {
    expect((await put('raw/once', 'a', { 'if-none-match': '*' })).status).toBe(200);
    const second = await put('raw/once', 'b', { 'if-none-match': '*' });
    expect(second.status).toBe(412);
    expect(second.text).toMatch(/<Code>PreconditionFailed<\/Code>/);
    expect(second.text).toMatch(/<Condition>If-None-Match<\/Condition>/);
    expect(await (await fetch(objectUrl('raw/once'))).text()).toBe('a');
  });

  it('returns ETags as quoted MD5s and compares If-Match with or without the quotes', async () => {
    const first = await put('raw/cas', 'one');
    expect(first.etag).toBe(`"${md5('one')}"`);
    expect((await put('raw/cas', 'two', { 'if-match': first.etag! })).status).toBe(200);
    expect((await put('raw/cas', 'stale', { 'if-match': first.etag! })).status).toBe(412);
    expect((await put('raw/cas', 'three', { 'if-match': md5('two') })).status).toBe(200);
    expect((await put('raw/cas', 'four', { 'if-match': `W/"${md5('three')}"` })).status).toBe(200);
    expect(await (await fetch(objectUrl('raw/cas'))).text()).toBe('four');
  });

  it('answers If-Match on a missing key with 404 NoSuchKey, as S3 does', async () => {
    const response = await put('raw/absent', 'x', { 'if-match': `"${md5('x')}"` });
    expect(response.status).toBe(404);
    expect(response.text).toMatch(/<Code>NoSuchKey<\/Code>/);
    expect((await fetch(objectUrl('raw/absent'))).status).toBe(404);
  });

  it('applies the destination conditions of a copy', async () => {
    await put('raw/copy-source', 'source');
    await put('raw/copy-target', 'target');
    const response = await fetch(objectUrl('raw/copy-target'), {
      method: 'PUT',
      headers: { 'x-amz-copy-source': `/${s3.bucket}/raw/copy-source`, 'if-none-match': '*' },
    });
    expect(response.status).toBe(412);
    expect(await (await fetch(objectUrl('raw/copy-target'))).text()).toBe('target');
  });
});

it('never lets a reader see half of a write', async () => {
  const bodies = [randomBytes(1_500_000), randomBytes(1_500_000)];
  const etags = bodies.map((b) => `"${md5(b)}"`);
  await put('raw/torn', bodies[0]);
  const writes = Array.from({ length: 6 }, (_, i) => put('raw/torn', bodies[i % 2]));
  const reads = Array.from({ length: 12 }, async () => {
    const response = await fetch(objectUrl('raw/torn'));
    return { etag: response.headers.get('etag'), body: Buffer.from(await response.arrayBuffer()) };
  });
  await Promise.all(writes);
  for (const read of await Promise.all(reads)) {
    const which = etags.indexOf(read.etag!);
    expect(which).toBeGreaterThanOrEqual(0);
    expect(read.body.equals(bodies[which])).toBe(true);
  }
});

it('lets a browser on another origin PUT through a presigned URL (CORS preflight)', async () => {
  const preflight = await fetch(objectUrl('uploads/browser'), {
    method: 'OPTIONS',
    headers: {
      origin: 'http://localhost:5173',
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'content-type',
    },
  });
  expect(preflight.status).toBe(200);
  expect(preflight.headers.get('access-control-allow-methods')).toMatch(/PUT/);
  expect(preflight.headers.get('access-control-allow-headers')).toMatch(/content-type/);
});

it('refuses keys that would climb out of its directory', async () => {
  // fetch() normalises '..' away; a raw request sends the path as an SDK would.
  const { port } = new URL(s3.endpoint);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: `/${s3.bucket}/a/../../escaped`,
        headers: { 'content-length': 1 },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end('x');
  });
  expect(status).toBe(400);
  expect(existsSync(join(s3.directory, 'escaped._S3rver_object'))).toBe(false);
});
