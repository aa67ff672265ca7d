import { mkdtemp, rm } from 'fs/promises';
import { tmpdir } from 'os';
import { join } from 'path';
import { LOCAL_S3_REGION, startLocalS3 } from '../../src/local/s3-server';
import { ObjectStore, S3StoreConfig } from '../../src/storage/object-store';
import { createS3ObjectStore } from '../../src/storage/s3-object-store';

export interface TestS3 {
  store: ObjectStore;
  endpoint: string;
  bucket: string;
  /** Where the server keeps its files (removed on stop). */
  directory: string;
  /** What a second client (or a child process's env) needs to reach the same bucket. */
  config: S3StoreConfig;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /** Every key in the bucket, sorted. */
  listKeys(): Promise<string[]>;
}

/**
 * A real S3 server over HTTP on a free port of 127.0.0.1, with its data in a fresh temporary
 * directory. One per test file: `beforeAll(async () => (s3 = await startTestS3()))`,
 * `afterAll(() => s3.stop())`.
 */
export async function startTestS3(opts: { allowedOrigins?: string[] } = {}): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 'lymphoscope-s3-'));
  const bucket = 'lymphoscope-test';
  const server = await startLocalS3({ directory, bucket, port: 0, allowedOrigins: opts.allowedOrigins });
  const config: S3StoreConfig = {
    bucket,
    region: LOCAL_S3_REGION,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { ...server.credentials },
  };
  const store = createS3ObjectStore(config);
  return {
    store,
    endpoint: server.endpoint,
    bucket,
    directory,
    config,
    async stop() {
      await server.stop();
      await rm(directory, { recursive: true, force: true });
    },
    async listKeys() {
      return (await store.listAll('')).map((o) => o.key).sort();
    },
  };
}
