import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalStack, type LocalStack } from '../../src/local/stack';
import { errorCode } from '../helpers/e2e-stack';
import { graphqlClient, ok } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import { signedFetch } from '../helpers/signed-fetch';
import { postUpload, UPLOAD_GRANT } from '../helpers/upload';

// The local stack as `npm start` runs it, attacked from the same machine: through its S3 port, and
// through the upload grants it hands out.

const UPLOAD_LIMIT = 700_000;
const ADMIN_KEY = 'lsk_stack_trust_admin_0123456789abcdef';
let dir: string;
let stack: LocalStack;
let admin: ReturnType<typeof graphqlClient>;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-stack-trust-'));
  stack = await startLocalStack({
    dataDir: dir,
    adminKey: ADMIN_KEY,
    demoModel: false,
    logLevel: 'silent',
    env: { LYMPHOSCOPE_MAX_UPLOAD_BYTES: String(UPLOAD_LIMIT) },
  });
  admin = graphqlClient(stack.url, ADMIN_KEY);
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

it('refuses a forged key record written straight to its S3, so the forged ADMIN key does not work', async () => {
  const secret = 'lsk_forged_admin_key_0123456789abcdef';
  const hash = createHash('sha256').update(secret).digest('hex');
  const record = JSON.stringify({
    id: 'key-forged',
    name: 'forged',
    role: 'ADMIN',
    hash,
    createdAt: new Date().toISOString(),
    createdBy: 'nobody',
    revokedAt: null,
  });
  const url = `${stack.s3Endpoint}/${stack.bucket}/keys/by-hash/${hash}.json`;
  const unsigned = await fetch(url, {
    method: 'PUT',
    body: record,
    headers: { 'content-type': 'application/json' },
  });
  expect(unsigned.status).toBe(403);
  // s3rver's well-known secret, which any local process could have used before.
  const wellKnown = await signedFetch({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, url, {
    method: 'PUT',
    body: record,
  });
  expect(wellKnown.status).toBe(403);
  // A page on another origin cannot even ask.
  const crossOrigin = await fetch(url, {
    method: 'OPTIONS',
    headers: { origin: 'http://evil.example', 'access-control-request-method': 'PUT' },
  });
  expect(crossOrigin.status).toBe(403);

  const forged = await graphqlClient(
    stack.url,
    secret,
  )('mutation { createApiKey(input: { name: "escalated", role: ADMIN }) { secret } }');
  expect(errorCode(forged)).toBe('UNAUTHENTICATED');
  expect((await stack.services.auth.list()).map((k) => k.id)).not.toContain('key-forged');
  // The console's own origin is allowed.
  const console = await fetch(url, {
    method: 'OPTIONS',
    headers: { origin: new URL(stack.url).origin, 'access-control-request-method': 'POST' },
  });
  expect(console.status).toBe(200);
});

it('hands out upload grants that storage itself holds to the size limit', async () => {
  const cell = sampleImages()[0];
  const create = () =>
    admin(
      `mutation { createImageUpload(input: { contentType: "image/bmp" }) { uploadId maxBytes ${UPLOAD_GRANT} } }`,
    );
  const big = ok(await create()).createImageUpload;
  expect(big.method).toBe('POST');
  expect(big.maxBytes).toBe(UPLOAD_LIMIT);
  const tooLarge = Buffer.concat([cell.bytes, Buffer.alloc(UPLOAD_LIMIT + 1 - cell.bytes.length)]);
  const refused = await postUpload(big, tooLarge, 'image/bmp');
  expect(refused.status).toBe(400);
  expect(await refused.text()).toMatch(/<Code>EntityTooLarge<\/Code>/);
  const confirmBig = await admin('mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate } }', {
    id: big.uploadId,
  });
  expect(errorCode(confirmBig)).toBe('BAD_USER_INPUT');

  const fits = ok(await create()).createImageUpload;
  expect((await postUpload(fits, cell.bytes, 'image/bmp')).status).toBe(204);
  const confirmed = await admin('mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate } }', {
    id: fits.uploadId,
  });
  expect(ok(confirmed).confirmImageUpload.duplicate).toBe(false);
});
