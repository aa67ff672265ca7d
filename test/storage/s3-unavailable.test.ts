import { mkdtemp, rm } from 'fs/promises';
import { createServer, Server, Socket } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import { ErrorCode, LymphoscopeError } from '../../src/errors';
import { LOCAL_S3_REGION, LocalS3, startLocalS3 } from '../../src/local/s3-server';
import { createS3ObjectStore } from '../../src/storage/s3-object-store';

/** Runs `action`, expecting it to fail with UNAVAILABLE; returns how long that took. */
async function unavailableAfterMs(action: () => Promise<unknown>): Promise<number> {
  const started = Date.now();
  const error = await action().then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(LymphoscopeError);
  expect((error as LymphoscopeError).code).toBe(ErrorCode.UNAVAILABLE);
  return Date.now() - started;
}

describe('when S3 goes away', () => {
  let directory: string;
  let server: LocalS3 | undefined;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'lymphoscope-s3-restart-'));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(directory, { recursive: true, force: true });
  });

  it('fails with UNAVAILABLE while it is down, and recovers on the same client when it is back', async () => {
    const secretAccessKey = 'restart-test-secret';
    server = await startLocalS3({ directory, bucket: 'restart', port: 0, secretAccessKey });
    const port = server.port;
    const store = createS3ObjectStore({
      bucket: 'restart',
      region: LOCAL_S3_REGION,
      endpoint: server.endpoint,
      credentials: { ...server.credentials },
    });
    await store.put('jobs/j1/job.json', '{"status":"RUNNING"}');
    expect(await store.ping()).toBe(true);

    await server.stop();
    server = undefined;
    // Refused connections fail fast; the bound is the retries' backoff, far below the Lambda timeout.
    expect(await unavailableAfterMs(() => store.get('jobs/j1/job.json'))).toBeLessThan(10_000);
    expect(await unavailableAfterMs(() => store.put('jobs/j1/job.json', '{}'))).toBeLessThan(10_000);
    expect(await unavailableAfterMs(() => store.listPage('jobs/'))).toBeLessThan(10_000);
    expect(await store.ping()).toBe(false);

    server = await startLocalS3({ directory, bucket: 'restart', port, secretAccessKey });
    expect(await store.ping()).toBe(true);
    // The data outlived the restart, and the client's dead keep-alive sockets did not poison it.
    expect((await store.get('jobs/j1/job.json'))!.body.toString()).toBe('{"status":"RUNNING"}');
  });
});

describe('when S3 accepts connections but never answers', () => {
  let silent: Server;
  const sockets = new Set<Socket>();
  let endpoint: string;
  beforeAll(async () => {
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    endpoint = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((resolve) => silent.close(resolve));
  });

  it('gives up after the configured timeouts with UNAVAILABLE', async () => {
    const store = createS3ObjectStore({
      bucket: 'silent',
      region: LOCAL_S3_REGION,
      endpoint,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'unused' },
      timeouts: { connectionMs: 300, requestMs: 500, maxAttempts: 2 },
    });
    // Two attempts of 500 ms plus backoff; without a request timeout this would hang until jest's.
    const elapsed = await unavailableAfterMs(() => store.get('anything'));
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5_000);
    expect(await store.ping()).toBe(false);
  });
});
