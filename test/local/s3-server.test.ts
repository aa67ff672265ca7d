import { createHash, randomBytes } from 'crypto';
import { existsSync } from 'fs';
import { readdir, readFile } from 'fs/promises';
import { request } from 'http';
import { join } from 'path';
import { startTestS3, TestS3 } from '../helpers/s3';
import { signedFetch, signedRequest } from '../helpers/signed-fetch';
import { postUpload } from '../helpers/upload';
import { s3Signer } from '../../src/storage/s3-signer';
import { LOCAL_S3_REGION } from '../../src/local/s3-server';

// The local server speaks plain S3 over HTTP; these requests are signed by hand (SigV4, as the SDK
// signs), so they test the server's behaviour without the SDK's client in between.

/** The local API's origin, the one page allowed to call the local S3 from a browser. */
const CONSOLE_ORIGIN = 'http://127.0.0.1:4000';
let s3: TestS3;
let objectUrl: (key: string) => string;
beforeAll(async () => {
  s3 = await startTestS3({ allowedOrigins: [CONSOLE_ORIGIN] });
  objectUrl = (key) => `${s3.endpoint}/${s3.bucket}/${key}`;
});
afterAll(() => s3.stop());

const md5 = (body: Uint8Array | string) => createHash('md5').update(body).digest('hex');
const get = (key: string) => signedFetch(s3.config.credentials!, objectUrl(key));

async function put(key: string, body: Uint8Array | string, headers: Record<string, string> = {}) {
  const response = await signedFetch(s3.config.credentials!, objectUrl(key), {
    method: 'PUT',
    body,
    headers,
  });
  return { status: response.status, etag: response.headers.get('etag'), text: await response.text() };
}

describe('conditional PUT', () => {
  it('answers If-None-Match: * on an existing key with S3’s 412 PreconditionFailed', async () => {
    expect((await put('raw/once', 'a', { 'if-none-match': '*' })).status).toBe(200);
    const second = await put('raw/once', 'b', { 'if-none-match': '*' });
    expect(second.status).toBe(412);
    expect(second.text).toMatch(/<Code>PreconditionFailed<\/Code>/);
    expect(second.text).toMatch(/<Condition>If-None-Match<\/Condition>/);
    expect(await (await get('raw/once')).text()).toBe('a');
  });

  it('returns ETags as quoted MD5s and compares If-Match with or without the quotes', async () => {
    const first = await put('raw/cas', 'one');
    expect(first.etag).toBe(`"${md5('one')}"`);
    expect((await put('raw/cas', 'two', { 'if-match': first.etag! })).status).toBe(200);
    expect((await put('raw/cas', 'stale', { 'if-match': first.etag! })).status).toBe(412);
    expect((await put('raw/cas', 'three', { 'if-match': md5('two') })).status).toBe(200);
    expect((await put('raw/cas', 'four', { 'if-match': `W/"${md5('three')}"` })).status).toBe(200);
    expect(await (await get('raw/cas')).text()).toBe('four');
  });

  it('answers If-Match on a missing key with 404 NoSuchKey, as S3 does', async () => {
    const response = await put('raw/absent', 'x', { 'if-match': `"${md5('x')}"` });
    expect(response.status).toBe(404);
    expect(response.text).toMatch(/<Code>NoSuchKey<\/Code>/);
    expect((await get('raw/absent')).status).toBe(404);
  });

  it('applies the destination conditions of a copy', async () => {
    await put('raw/copy-source', 'source');
    await put('raw/copy-target', 'target');
    const response = await signedFetch(s3.config.credentials!, objectUrl('raw/copy-target'), {
      method: 'PUT',
      headers: { 'x-amz-copy-source': `/${s3.bucket}/raw/copy-source`, 'if-none-match': '*' },
    });
    expect(response.status).toBe(412);
    expect(await (await get('raw/copy-target')).text()).toBe('target');
  });
});

it('never lets a reader see half of a write', async () => {
  const bodies = [randomBytes(1_500_000), randomBytes(1_500_000)];
  const etags = bodies.map((b) => `"${md5(b)}"`);
  await put('raw/torn', bodies[0]);
  const writes = Array.from({ length: 6 }, (_, i) => put('raw/torn', bodies[i % 2]));
  const reads = Array.from({ length: 12 }, async () => {
    const response = await get('raw/torn');
    return { etag: response.headers.get('etag'), body: Buffer.from(await response.arrayBuffer()) };
  });
  await Promise.all(writes);
  for (const read of await Promise.all(reads)) {
    const which = etags.indexOf(read.etag!);
    expect(which).toBeGreaterThanOrEqual(0);
    expect(read.body.equals(bodies[which])).toBe(true);
  }
});

describe('whole-object PUT on disk (makePutsAtomic)', () => {
  /** The files s3rver keeps for `key`: the object, its MD5 and its metadata, and any leftovers beside them. */
  async function filesOf(key: string): Promise<string[]> {
    const dir = join(s3.directory, s3.bucket, ...key.split('/').slice(0, -1));
    const name = key.split('/').pop()!;
    return (await readdir(dir)).filter((f) => f.startsWith(`${name}._S3rver_`)).sort();
  }

  it('leaves the bytes, their MD5 and the metadata, and no temporary file, for a new key and an overwrite', async () => {
    const first = randomBytes(300_000);
    const second = randomBytes(1_000);
    for (const [body, type] of [
      [first, 'image/bmp'],
      [second, 'image/png'],
    ] as const) {
      const answer = await put('disk/cell', body, { 'content-type': type, 'x-amz-meta-sha256': md5(body) });
      expect(answer.status).toBe(200);
      expect(answer.etag).toBe(`"${md5(body)}"`);
      const files = await filesOf('disk/cell');
      expect(files).toEqual(['cell._S3rver_metadata.json', 'cell._S3rver_object', 'cell._S3rver_object.md5']);
      const base = join(s3.directory, s3.bucket, 'disk', 'cell._S3rver_');
      expect(await readFile(`${base}object`)).toEqual(body);
      expect(await readFile(`${base}object.md5`, 'utf8')).toBe(md5(body));
      expect(JSON.parse(await readFile(`${base}metadata.json`, 'utf8'))).toEqual({
        'content-type': type,
        'x-amz-meta-sha256': md5(body),
      });
      const read = await get('disk/cell');
      expect(Buffer.from(await read.arrayBuffer())).toEqual(body);
      expect(read.headers.get('content-type')).toBe(type);
    }
  });

  it('keeps each of many concurrent writes to distinct keys whole', async () => {
    const bodies = Array.from({ length: 12 }, (_, i) => randomBytes(20_000 + i));
    const answers = await Promise.all(bodies.map((b, i) => put(`disk/many/${i}`, b)));
    expect(answers.map((a) => a.status)).toEqual(bodies.map(() => 200));
    for (const [i, body] of bodies.entries()) {
      expect(Buffer.from(await (await get(`disk/many/${i}`)).arrayBuffer())).toEqual(body);
      expect((await filesOf(`disk/many/${i}`)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    }
  });
});

describe('CORS: only the console’s origin', () => {
  const preflight = (origin: string) =>
    fetch(objectUrl('uploads/browser'), {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });

  it('answers a preflight from the local API’s own origin', async () => {
    const response = await preflight(CONSOLE_ORIGIN);
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe(CONSOLE_ORIGIN);
    expect(response.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(response.headers.get('access-control-allow-headers')).toMatch(/content-type/);
  });

  it('refuses a preflight, and any request, from another origin', async () => {
    const response = await preflight('http://evil.example');
    expect(response.status).toBe(403);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    // A form POST needs no preflight: it is refused on its Origin alone, signed or not.
    const form = await fetch(`${s3.endpoint}/${s3.bucket}`, {
      method: 'POST',
      headers: { origin: 'http://evil.example' },
      body: new FormData(),
    });
    expect(form.status).toBe(403);
  });
});

describe('signatures (SigV4) on every request', () => {
  it('refuses an unsigned PUT and GET', async () => {
    const forged = await fetch(objectUrl('keys/by-hash/forged.json'), {
      method: 'PUT',
      body: '{"role":"ADMIN"}',
    });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toMatch(/<Code>AccessDenied<\/Code>/);
    expect(await s3.store.head('keys/by-hash/forged.json')).toBeNull();
    await s3.store.put('raw/secret', 'secret');
    expect((await fetch(objectUrl('raw/secret'))).status).toBe(403);
  });

  it('refuses a request signed with another secret, and one altered after signing', async () => {
    const wrong = { accessKeyId: s3.config.credentials!.accessKeyId, secretAccessKey: 'S3RVER' };
    const response = await signedFetch(wrong, objectUrl('raw/wrong-secret'), { method: 'PUT', body: 'x' });
    expect(response.status).toBe(403);
    expect(await response.text()).toMatch(/<Code>SignatureDoesNotMatch<\/Code>/);
    // Signed for one key, sent to another.
    const signed = await signedRequest(s3.config.credentials!, objectUrl('raw/signed-for'), {
      method: 'PUT',
    });
    const { host: _h, ...headers } = signed.headers;
    const moved = await fetch(objectUrl('raw/sent-to'), { method: 'PUT', headers, body: 'x' });
    expect(moved.status).toBe(403);
    expect(await s3.store.head('raw/sent-to')).toBeNull();
  });

  it('accepts a presigned GET as signed, and refuses it for another key or a longer life', async () => {
    await s3.store.put('raw/presigned', 'granted');
    const url = await s3.store.presignGet('raw/presigned', { expiresInSeconds: 60 });
    expect(await (await fetch(url)).text()).toBe('granted');
    const other = new URL(url);
    other.pathname = other.pathname.replace('presigned', 'secret');
    expect((await fetch(other)).status).toBe(403);
    const stretched = new URL(url);
    stretched.searchParams.set('X-Amz-Expires', '600');
    expect((await fetch(stretched)).status).toBe(403);
  });

  it('accepts a presigned URL from another SigV4 client, which leaves the payload hash out of the query', async () => {
    await s3.store.put('raw/botocore', 'from another client');
    const target = new URL(objectUrl('raw/botocore'));
    // As botocore presigns: UNSIGNED-PAYLOAD in the canonical request, not in the URL.
    const presigned = await s3Signer(s3.config.credentials!, LOCAL_S3_REGION).presign(
      {
        method: 'GET',
        protocol: 'http:',
        hostname: target.hostname,
        port: Number(target.port),
        path: target.pathname,
        query: {},
        headers: { host: target.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      },
      {
        expiresIn: 60,
        unhoistableHeaders: new Set(['x-amz-content-sha256']),
        unsignableHeaders: new Set(['x-amz-content-sha256']),
      },
    );
    const query = new URLSearchParams(presigned.query as Record<string, string>);
    expect(query.has('X-Amz-Content-Sha256')).toBe(false);
    const response = await fetch(`${s3.endpoint}${target.pathname}?${query}`);
    expect(await response.text()).toBe('from another client');
  });
});

describe('browser POST uploads with a signed policy', () => {
  const grant = async (key: string, maxBytes = 1000, contentType = 'image/png') => {
    const { url, fields } = await s3.store.presignPost(key, { expiresInSeconds: 60, contentType, maxBytes });
    return { url, fields: Object.entries(fields).map(([name, value]) => ({ name, value })) };
  };

  it('stores a file within the policy, with the Content-Type it pins', async () => {
    const bytes = randomBytes(1000);
    const response = await postUpload(await grant('uploads/post-ok'), bytes, 'image/png');
    expect(response.status).toBe(204);
    expect(response.headers.get('etag')).toBe(`"${md5(bytes)}"`);
    const stored = await s3.store.get('uploads/post-ok');
    expect(stored!.body.equals(bytes)).toBe(true);
    expect(stored!.info.contentType).toBe('image/png');
  });

  it('refuses a file over the content-length-range before storing anything', async () => {
    const response = await postUpload(await grant('uploads/post-big'), randomBytes(1001), 'image/png');
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/<Code>EntityTooLarge<\/Code>/);
    expect(await s3.store.head('uploads/post-big')).toBeNull();
  });

  it('refuses a body over the server’s own cap without reading it', async () => {
    // Announces 65 MiB and sends 1 KiB: the answer comes from the announcement alone.
    const { port } = new URL(s3.endpoint);
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: `/${s3.bucket}`,
          headers: { 'content-type': 'multipart/form-data; boundary=x', 'content-length': 65 * 1024 * 1024 },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.write(Buffer.alloc(1024));
    });
    expect(answer.status).toBe(400);
    expect(answer.text).toMatch(/<Code>EntityTooLarge<\/Code>/);
  });

  it('refuses another Content-Type, another key, an extra field and a forged policy', async () => {
    const ok = await grant('uploads/post-pinned');
    expect((await postUpload(ok, randomBytes(10), 'image/png')).status).toBe(204);

    const otherType = await grant('uploads/post-type');
    otherType.fields.find((f) => f.name === 'Content-Type')!.value = 'text/html';
    expect((await postUpload(otherType, randomBytes(10), 'text/html')).status).toBe(403);

    const otherKey = await grant('uploads/post-key');
    otherKey.fields.find((f) => f.name === 'key')!.value = 'keys/by-hash/forged.json';
    expect((await postUpload(otherKey, randomBytes(10), 'image/png')).status).toBe(403);

    const extra = await grant('uploads/post-extra');
    extra.fields.unshift({ name: 'x-amz-meta-role', value: 'ADMIN' });
    expect((await postUpload(extra, randomBytes(10), 'image/png')).status).toBe(403);

    const forged = await grant('uploads/post-forged');
    const policy = forged.fields.find((f) => f.name === 'Policy')!;
    policy.value = Buffer.from(
      Buffer.from(policy.value, 'base64')
        .toString()
        .replace(/"content-length-range",1,1000/, '"content-length-range",1,99999'),
    ).toString('base64');
    const response = await postUpload(forged, randomBytes(5000), 'image/png');
    expect(response.status).toBe(403);
    expect(await response.text()).toMatch(/SignatureDoesNotMatch/);
    for (const key of ['uploads/post-type', 'uploads/post-key', 'uploads/post-extra', 'uploads/post-forged'])
      expect(await s3.store.head(key)).toBeNull();
    expect(await s3.store.head('keys/by-hash/forged.json')).toBeNull();
  });
});

it('refuses keys that would climb out of its directory', async () => {
  // fetch() normalises '..' away; a raw request sends the path as an SDK would.
  const signed = await signedRequest(s3.config.credentials!, `${s3.endpoint}/${s3.bucket}/a/../../escaped`, {
    method: 'PUT',
  });
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: signed.host,
        port: signed.port,
        method: 'PUT',
        path: signed.path,
        headers: { ...signed.headers, 'content-length': 1 },
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
