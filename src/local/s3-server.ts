import { mkdir } from 'fs/promises';
import S3rver from 's3rver';
import { deleteTagsWithObjects, makePutsAtomic, serialisedConditionalRequests } from './s3rver-compat';

/**
 * The embedded S3: s3rver 3 on 127.0.0.1, keeping its objects in a directory across restarts, made to
 * behave like S3 where Lymphoscope depends on it (see s3rver-compat.ts): conditional writes
 * (If-None-Match: * and If-Match on PutObject and CopyObject, answered with S3's 412), requests for one
 * key serialised so that a check-then-write is atomic and a read never sees half a write, and
 * ListObjectsV2 pagination that works on Node 17+.
 */

/** s3rver accepts only this key pair; the signature itself is not checked for SigV4. */
export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const LOCAL_S3_REGION = 'us-east-1';

export interface LocalS3 {
  /** `http://127.0.0.1:<port>`; use path-style addressing. */
  endpoint: string;
  port: number;
  /** Closes the server and every open connection; the data stays in the directory. */
  stop(): Promise<void>;
}

export interface LocalS3Options {
  directory: string;
  /** 0 picks a free port. Default 0. */
  port?: number;
  bucket: string;
  /** Default true; s3rver's own request log is not JSON. */
  silent?: boolean;
}

/** Lets a browser on any origin PUT and GET through presigned URLs, like the deployed bucket's CORS rule. */
const CORS_CONFIGURATION = `<CORSConfiguration>
  <CORSRule>
    <AllowedOrigin>*</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod>
    <AllowedMethod>PUT</AllowedMethod>
    <AllowedMethod>HEAD</AllowedMethod>
    <AllowedHeader>*</AllowedHeader>
    <ExposeHeader>ETag</ExposeHeader>
    <MaxAgeSeconds>3000</MaxAgeSeconds>
  </CORSRule>
</CORSConfiguration>`;

export async function startLocalS3(opts: LocalS3Options): Promise<LocalS3> {
  await mkdir(opts.directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: opts.port ?? 0,
    directory: opts.directory,
    silent: opts.silent ?? true,
    // Path-style only: with virtual hosts on, a request to a host name other than localhost would be
    // read as a bucket name and bypass the per-key middleware's parsing.
    vhostBuckets: false,
    configureBuckets: [{ name: opts.bucket, configs: [CORS_CONFIGURATION] }],
  });
  makePutsAtomic(server.store);
  deleteTagsWithObjects(server.store);
  // Koa composes the stack when the server starts listening, so the front of the array runs first.
  server.middleware.unshift(serialisedConditionalRequests(server.store));
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      const closed = server.close();
      // SDK clients keep connections alive; without this, close() waits for them to time out.
      server.httpServer?.closeAllConnections();
      await closed;
    },
  };
}
