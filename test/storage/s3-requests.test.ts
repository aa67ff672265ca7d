import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { HttpResponse } from '@smithy/core/transport';
import type { HttpRequest } from '@smithy/types';
import { execFileSync } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { ErrorCode } from '../../src/errors';
import type { ObjectStore, S3StoreConfig } from '../../src/storage/object-store';
import { createS3Client, createS3ObjectStore, putHeaders } from '../../src/storage/s3-object-store';
import { directTarget, S3Requests } from '../../src/storage/s3-requests';
import { startLossyProxy, type LossyProxy } from '../helpers/lossy-proxy';
import { startTestS3, type TestS3 } from '../helpers/s3';

// The request path's S3 calls go without the SDK's client (src/storage/s3-requests.ts). These tests hold
// them to the SDK: the same request on the wire for the same call, the same answers read back, the same
// presigned URLs byte for byte, and the same retries, through real round trips to the local S3.

let s3: TestS3;
let proxy: LossyProxy;
let direct: ObjectStore;
let viaSdk: ObjectStore;
const config = (requests: 'direct' | 'sdk'): S3StoreConfig => ({
  ...s3.config,
  endpoint: proxy.endpoint,
  requests,
});

beforeAll(async () => {
  s3 = await startTestS3();
  proxy = await startLossyProxy(s3.endpoint);
  direct = createS3ObjectStore(config('direct'));
  viaSdk = createS3ObjectStore(config('sdk'));
});
afterAll(async () => {
  await proxy.stop();
  await s3.stop();
});

/** Headers that only say who sent a request, when and with which attempt: the rest must be equal. */
const BOOKKEEPING = new Set([
  'authorization',
  'x-amz-date',
  'user-agent',
  'x-amz-user-agent',
  'amz-sdk-invocation-id',
  'amz-sdk-request',
  'connection',
]);
function semanticHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!BOOKKEEPING.has(name.toLowerCase()) && value !== undefined) kept[name.toLowerCase()] = String(value);
  }
  return kept;
}
const signedHeaderNames = (authorization: string | string[] | undefined): string[] =>
  (/SignedHeaders=([^,\s]+)/.exec(String(authorization))?.[1] ?? '')
    .split(';')
    .filter((name) => !BOOKKEEPING.has(name));

/** What `action` sent through the proxy: method, path, and the headers that carry meaning. */
async function onTheWire(action: () => Promise<unknown>) {
  const from = proxy.received.length;
  await action();
  return proxy.received.slice(from).map((r) => ({
    method: r.method,
    url: r.url,
    headers: semanticHeaders(r.headers),
    signed: signedHeaderNames(r.headers.authorization),
  }));
}

describe('on the wire, the same requests as the SDK', () => {
  const body = Buffer.from('{"id":"p1","label":"ALL"}');
  const opts = {
    contentType: 'application/json',
    metadata: { 'model-version': 'v0001', note: 'a b/c' },
    tags: { retention: 'prediction-record' },
    ifNoneMatch: '*' as const,
  };

  it('PUT (conditional, with metadata and tags), GET and HEAD; and reads back the same', async () => {
    const viaSdkWire = await onTheWire(async () => {
      await viaSdk.put('predictions/k/one (1).json', body, opts);
      await viaSdk.get('predictions/k/one (1).json');
      await viaSdk.head('predictions/k/one (1).json');
    });
    const directWire = await onTheWire(async () => {
      await direct.put('predictions/k/two (1).json', body, opts);
      await direct.get('predictions/k/two (1).json');
      await direct.head('predictions/k/two (1).json');
    });
    expect(directWire).toHaveLength(3);
    // The conditional write's token differs by design (a random UUID per call); the rest is equal.
    const sameAs = (wire: typeof directWire) =>
      wire.map((r) => ({
        ...r,
        url: r.url.replace('one%20%281%29', 'two%20%281%29'),
        headers: { ...r.headers, 'x-amz-meta-write-token': r.headers['x-amz-meta-write-token'] && 'token' },
      }));
    expect(sameAs(directWire)).toEqual(sameAs(viaSdkWire));
    expect(directWire[0].url).toBe(`/${s3.bucket}/predictions/k/two%20%281%29.json?x-id=PutObject`);
    expect(directWire[0].signed).toEqual(
      expect.arrayContaining(['host', 'x-amz-content-sha256', 'if-none-match']),
    );

    // Each path reads what the other wrote, and both describe it alike.
    const a = await direct.get('predictions/k/one (1).json');
    const b = await viaSdk.get('predictions/k/one (1).json');
    expect(a!.body.equals(body)).toBe(true);
    expect({ ...a!.info }).toEqual({ ...b!.info });
    expect(a!.info).toMatchObject({ size: body.length, contentType: 'application/json' });
    expect(a!.info.metadata).toMatchObject({ 'model-version': 'v0001', note: 'a b/c' });
    expect(a!.info.lastModified).toBeInstanceOf(Date);
    expect(await direct.head('predictions/k/two (1).json')).toEqual(
      await viaSdk.head('predictions/k/two (1).json'),
    );
    expect(await direct.getTags('predictions/k/two (1).json')).toEqual({ retention: 'prediction-record' });
  });

  it('answers a missing key with null, and a lost condition with CONFLICT-ready PreconditionFailed', async () => {
    expect(await direct.get('predictions/k/absent.json')).toBeNull();
    expect(await direct.head('predictions/k/absent.json')).toBeNull();
    await expect(direct.put('predictions/k/one (1).json', body, opts)).rejects.toMatchObject({
      name: 'PreconditionFailed',
    });
    await expect(direct.put('predictions/k/one (1).json', body, { ifMatch: '"0123"' })).rejects.toMatchObject(
      {
        name: 'PreconditionFailed',
      },
    );
  });

  it('a body of 2 MB or more waits for S3 to accept it (Expect: 100-continue), as with the SDK', async () => {
    const large = Buffer.alloc(2 * 1024 * 1024, 7);
    const viaSdkWire = await onTheWire(() => viaSdk.put('checkpoints/one.bin', large));
    const directWire = await onTheWire(() => direct.put('checkpoints/two.bin', large));
    expect(directWire[0].headers.expect).toBe('100-continue');
    expect(directWire[0].headers).toEqual({ ...viaSdkWire[0].headers, host: directWire[0].headers.host });
    expect((await viaSdk.get('checkpoints/two.bin'))!.body.equals(large)).toBe(true);
    const small = await onTheWire(() => direct.put('checkpoints/small.bin', large.subarray(1)));
    expect(small[0].headers.expect).toBeUndefined();
  });

  it('an empty body and a string body', async () => {
    await direct.put('raw/empty', new Uint8Array());
    expect((await direct.get('raw/empty'))!.body.length).toBe(0);
    await direct.put('raw/text', 'é');
    expect((await viaSdk.get('raw/text'))!.body.toString('utf8')).toBe('é');
  });
});

describe("on Amazon S3's regional endpoint", () => {
  const cfg: S3StoreConfig = {
    bucket: 'lymphoscope-prod-data',
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'session-token' },
  };
  const ok = () => ({
    response: new HttpResponse({ statusCode: 200, headers: { etag: '"e"' }, body: Readable.from([]) }),
  });

  it('addresses the bucket in the host name and signs the session token, as the SDK does', async () => {
    const sdkSent: HttpRequest[] = [];
    const client = new S3Client({
      region: cfg.region,
      credentials: cfg.credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        handle: async (request: HttpRequest) => {
          sdkSent.push(request);
          return ok();
        },
      },
    });
    const key = "predictions/k/it's (1).png";
    await client.send(
      new PutObjectCommand({ Bucket: cfg.bucket, Key: key, Body: Buffer.from('x'), ContentLength: 1 }),
    );
    await client.send(new GetObjectCommand({ Bucket: cfg.bucket, Key: key }));
    await client.send(new HeadObjectCommand({ Bucket: cfg.bucket, Key: key }));

    const sent: HttpRequest[] = [];
    const requests = new S3Requests(directTarget(cfg, {})!, {
      maxAttempts: 1,
      http: {
        handle: async (request) => {
          sent.push(request);
          return ok();
        },
      },
    });
    await requests.send('PUT', key, {
      headers: putHeaders(1, {}, undefined, undefined),
      body: Buffer.from('x'),
    });
    await requests.send('GET', key);
    await requests.send('HEAD', key);

    const shape = (r: HttpRequest) => ({
      method: r.method,
      protocol: r.protocol,
      hostname: r.hostname,
      port: r.port,
      path: r.path,
      query: r.query,
      headers: semanticHeaders(r.headers),
      signed: signedHeaderNames(r.headers.authorization),
    });
    expect(sent.map(shape)).toEqual(sdkSent.map(shape));
    expect(sent[0].hostname).toBe('lymphoscope-prod-data.s3.eu-west-1.amazonaws.com');
    expect(sent[0].headers['x-amz-security-token']).toBe('session-token');
    expect(signedHeaderNames(sent[0].headers.authorization)).toContain('x-amz-security-token');
  });

  it('presigns a GET to the same URL, byte for byte, in both addressing styles', async () => {
    const signingDate = new Date('2026-11-28T03:00:00Z');
    const now = jest.spyOn(Date, 'now').mockReturnValue(signingDate.getTime());
    try {
      for (const target of [cfg, { ...s3.config, requests: 'direct' as const }]) {
        const client = createS3Client(target);
        const key = 'predictions/k/heat map (1).png';
        const disposition = 'attachment; filename="UID_11_1_1 heat map.png"';
        const expected = await getSignedUrl(
          client,
          new GetObjectCommand({ Bucket: target.bucket, Key: key, ResponseContentDisposition: disposition }),
          { expiresIn: 300, signingDate },
        );
        const requests = new S3Requests(directTarget(target, {})!, { maxAttempts: 1, http: {} });
        expect(await requests.presignGet(key, 300, { 'response-content-disposition': disposition })).toBe(
          expected,
        );
      }
    } finally {
      now.mockRestore();
    }
  });
});

describe('retries, as the SDK retries', () => {
  const putsTo = (key: string) => (req: IncomingMessage) =>
    req.method === 'PUT' && (req.url ?? '').split('?')[0].endsWith(key);
  const slowDown = {
    status: 503,
    headers: { 'content-type': 'application/xml' },
    body: '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
  };

  it('retries a throttled write until it lands, within the attempts it is given', async () => {
    const store = createS3ObjectStore({ ...config('direct'), timeouts: { maxAttempts: 3 } });
    const from = proxy.received.length;
    proxy.answerNext(putsTo('jobs/throttled.json'), slowDown, 2);
    await store.put('jobs/throttled.json', '{"n":1}');
    expect(proxy.received.slice(from).filter((r) => r.method === 'PUT')).toHaveLength(3);
    expect((await store.get('jobs/throttled.json'))!.body.toString()).toBe('{"n":1}');
  });

  it('gives up with UNAVAILABLE when the attempts are spent, and leaves nothing written', async () => {
    const store = createS3ObjectStore({ ...config('direct'), timeouts: { maxAttempts: 2 } });
    const from = proxy.received.length;
    proxy.answerNext(putsTo('jobs/never.json'), slowDown, 2);
    await expect(store.put('jobs/never.json', '{}')).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
    expect(proxy.received.slice(from)).toHaveLength(2);
    expect(await store.head('jobs/never.json')).toBeNull();
  });

  it('does not retry what retrying cannot fix (a 400), and names it', async () => {
    const from = proxy.received.length;
    proxy.answerNext(putsTo('jobs/refused.json'), {
      status: 400,
      body: '<Error><Code>InvalidArgument</Code><Message>no</Message></Error>',
    });
    const error = await direct.put('jobs/refused.json', '{}').catch((e: Error) => e);
    expect(proxy.received.slice(from)).toHaveLength(1);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe("S3 PutObject 'jobs/refused.json' failed: InvalidArgument");
  });

  it("corrects its clock from S3's when a request is refused as skewed, and the retry lands", async () => {
    const ahead = 6 * 60 * 1000;
    const from = proxy.received.length;
    proxy.answerNext(putsTo('jobs/skewed.json'), {
      status: 403,
      headers: { date: new Date(Date.now() + ahead).toUTCString() },
      body: '<Error><Code>RequestTimeTooSkewed</Code><Message>too skewed</Message></Error>',
    });
    await direct.put('jobs/skewed.json', '{}');
    const attempts = proxy.received.slice(from).map((r) => String(r.headers['x-amz-date']));
    expect(attempts).toHaveLength(2);
    const asTime = (d: string) =>
      Date.parse(d.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
    expect(asTime(attempts[1]) - asTime(attempts[0])).toBeGreaterThan(ahead - 5_000);
  });
});

describe('when the direct path applies', () => {
  const local: S3StoreConfig = {
    bucket: 'b',
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:4568',
    forcePathStyle: true,
  };
  const keys = { AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret' };
  const aws: S3StoreConfig = { bucket: 'lymphoscope-data', region: 'us-east-1' };

  it("takes the environment's keys as the SDK's first link does, and nothing else", () => {
    expect(directTarget(aws, { ...keys, AWS_SESSION_TOKEN: 'tok' })?.credentials).toEqual({
      accessKeyId: 'AKID',
      secretAccessKey: 'secret',
      sessionToken: 'tok',
    });
    // A profile wins over the keys in the SDK's chain; no keys at all leaves the chain to the SDK.
    expect(directTarget(aws, { ...keys, AWS_PROFILE: 'lab' })).toBeUndefined();
    expect(directTarget(aws, {})).toBeUndefined();
    expect(directTarget(local, keys)).toMatchObject({ hostname: '127.0.0.1', port: 4568, pathPrefix: '/b' });
  });

  it('leaves to the SDK the endpoints it resolves itself', () => {
    for (const env of [
      { AWS_ENDPOINT_URL: 'http://elsewhere' },
      { AWS_ENDPOINT_URL_S3: 'http://elsewhere' },
      { AWS_USE_FIPS_ENDPOINT: 'true' },
      { AWS_USE_DUALSTACK_ENDPOINT: 'true' },
    ]) {
      expect(directTarget(aws, { ...keys, ...env })).toBeUndefined();
    }
    expect(directTarget({ ...aws, bucket: 'with.dots' }, keys)).toBeUndefined();
    expect(directTarget({ ...local, forcePathStyle: false }, keys)).toBeUndefined();
    expect(directTarget({ ...local, endpoint: 'http://127.0.0.1:4568/prefix' }, keys)).toBeUndefined();
    expect(directTarget(aws, keys)).toMatchObject({
      protocol: 'https:',
      hostname: 'lymphoscope-data.s3.us-east-1.amazonaws.com',
    });
  });

  it('a process that only gets, puts, heads and presigns GETs never loads the SDK client', () => {
    const script = `
      const { createS3ObjectStore } = require('./src/storage/s3-object-store');
      const { startLocalS3, LOCAL_S3_REGION } = require('./src/local/s3-server');
      const { mkdtempSync } = require('node:fs');
      (async () => {
        const loaded = () => Object.keys(require.cache).filter((p) => p.includes('@aws-sdk/client-s3')).length;
        const before = loaded();
        const server = await startLocalS3({ directory: mkdtempSync('/tmp/lymphoscope-sdk-free-'), bucket: 'b', port: 0 });
        const store = createS3ObjectStore({ bucket: 'b', region: LOCAL_S3_REGION, endpoint: server.endpoint, credentials: server.credentials });
        await store.put('a/b.json', '{}', { ifNoneMatch: '*' });
        await store.get('a/b.json');
        await store.head('a/b.json');
        await store.presignGet('a/b.json', { expiresInSeconds: 60 });
        const afterRequests = loaded();
        await store.listAll('a/');
        console.log(JSON.stringify({ before, afterRequests, afterList: loaded() }));
        await server.stop();
      })();`;
    const out = execFileSync('npx', ['tsx', '-e', script], { cwd: process.cwd(), encoding: 'utf8' });
    const counts = JSON.parse(out.trim().split('\n').pop()!);
    // The local S3 server itself does not use the SDK client either; a listing loads it.
    expect(counts).toMatchObject({ before: 0, afterRequests: 0 });
    expect(counts.afterList).toBeGreaterThan(0);
  }, 60_000);
});
