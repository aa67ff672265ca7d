import { spawnSync } from 'child_process';
import { mkdtemp, rm } from 'fs/promises';
import { createServer } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import { startLocalS3InWorker, type LocalS3 } from '../../src/local/s3-server';
import { signedFetch } from '../helpers/signed-fetch';

/**
 * The local stack runs its S3 server on a worker thread (startLocalS3InWorker), so that the server's work
 * runs beside the API's event loop, as S3 does beside a Lambda. Over real HTTP: signed requests are served
 * and unsigned ones refused as in process, the server answers while this thread is blocked, CORS origins
 * added later reach it, a taken port fails the start with its code, and stop frees the port.
 */
const BUCKET = 'worker-bucket';
const ORIGIN = 'http://127.0.0.1:4000';
let directory: string;
let s3: LocalS3;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'lymphoscope-s3-worker-'));
  s3 = await startLocalS3InWorker({ directory, bucket: BUCKET, port: 0 });
});
afterAll(async () => {
  await s3?.stop();
  await rm(directory, { recursive: true, force: true });
});

const url = (key: string) => `${s3.endpoint}/${BUCKET}/${key}`;

/** Runs `fetch` in another process while this thread waits for it, blocked: returns the status it got. */
function statusFromBlockedThread(target: string, headers: Record<string, string> = {}): string {
  const script = `fetch(${JSON.stringify(target)}, { method: 'OPTIONS', headers: ${JSON.stringify(headers)} })
    .then((r) => console.log(r.status + ' ' + (r.headers.get('access-control-allow-origin') ?? '-')))
    .catch((e) => console.log('failed ' + e.message));`;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 15_000 });
  return child.stdout.trim();
}

describe('startLocalS3InWorker', () => {
  it('stores and reads objects for signed requests and refuses unsigned ones', async () => {
    const put = await signedFetch(s3.credentials, url('a/b.json'), { method: 'PUT', body: '{"x":1}' });
    expect(put.status).toBe(200);
    const got = await signedFetch(s3.credentials, url('a/b.json'));
    expect(await got.text()).toBe('{"x":1}');
    const unsigned = await fetch(url('a/b.json'));
    expect(unsigned.status).toBe(403);
  });

  it('answers while this thread is blocked, and takes origins added after the start', () => {
    const preflight = { origin: ORIGIN, 'access-control-request-method': 'PUT' };
    // spawnSync blocks this thread until the child exits: only a server on another thread can answer it.
    expect(statusFromBlockedThread(url('a/b.json'), preflight)).toMatch(/^403 /);
    s3.allowOrigin(ORIGIN);
    // The message reaches the worker before the next request it serves (one port, in order).
    let answer = '';
    for (let attempt = 0; attempt < 20 && !answer.startsWith('200'); attempt++)
      answer = statusFromBlockedThread(url('a/b.json'), preflight);
    expect(answer).toBe(`200 ${ORIGIN}`);
  });

  it('fails to start on a taken port with EADDRINUSE, and stop frees its port', async () => {
    await expect(startLocalS3InWorker({ directory, bucket: BUCKET, port: s3.port })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    const other = await startLocalS3InWorker({ directory, bucket: BUCKET, port: 0 });
    await other.stop();
    const probe = createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(other.port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });
});
