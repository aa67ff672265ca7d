import { randomBytes } from 'crypto';
import { mkdir } from 'fs/promises';
import path from 'path';
import { Worker } from 'worker_threads';
import S3rver from 's3rver';
import { trustNoOne } from './s3-gate';
import { repairLocalStore, type StoreRepair } from './s3-repair';
import { LocalS3Signatures, type LocalS3Credentials } from './s3-signature';
import {
  deleteTagsWithObjects,
  KeyedLocks,
  lookUpSynchronously,
  makePutsAtomic,
  serialisedConditionalRequests,
} from './s3rver-compat';

/**
 * The embedded S3: s3rver 3 on 127.0.0.1, keeping its objects in a directory across restarts, made to
 * behave like S3 where Lymphoscope depends on it (see s3rver-compat.ts): conditional writes
 * (If-None-Match: * and If-Match on PutObject and CopyObject, answered with S3's 412), requests for one
 * key serialised so that a check-then-write is atomic and a read never sees half a write, and
 * ListObjectsV2 pagination that works on Node 17+. It trusts no one (s3-gate.ts): every request must be
 * signed (SigV4, verified) with this server's secret, browser POST uploads must satisfy their signed
 * policy (size bound included), CORS is granted only to the origins the stack names, and it listens on
 * 127.0.0.1 only.
 */

/** s3rver knows one access key id; the secret is this server's own (see `secretAccessKey`). */
export const LOCAL_S3_ACCESS_KEY_ID = 'S3RVER';
export type { LocalS3Credentials };
export const LOCAL_S3_REGION = 'us-east-1';
/** The most a browser POST upload may carry; a larger body is refused without being read. */
const MAX_POST_BODY_BYTES = 64 * 1024 * 1024;

export interface LocalS3 {
  /** `http://127.0.0.1:<port>`; use path-style addressing. */
  endpoint: string;
  port: number;
  /** What clients sign with; requests signed with anything else are refused. */
  credentials: LocalS3Credentials;
  /** What the start-up check repaired or quarantined (s3-repair.ts); empty when all was sound. */
  repairs: StoreRepair[];
  /** Lets a browser page on `origin` (scheme://host:port) call the server (CORS). */
  allowOrigin(origin: string): void;
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
  /** The secret requests must be signed with; a random one when absent. */
  secretAccessKey?: string;
  /** Origins whose pages may call the server (CORS); none by default. */
  allowedOrigins?: string[];
}

export async function startLocalS3(opts: LocalS3Options): Promise<LocalS3> {
  await mkdir(opts.directory, { recursive: true });
  // Before s3rver reads anything: a damaged object would otherwise answer 500 to every read for good.
  const repairs = await repairLocalStore(opts.directory);
  const server = new S3rver({
    address: '127.0.0.1',
    port: opts.port ?? 0,
    directory: opts.directory,
    silent: opts.silent ?? true,
    // Path-style only: with virtual hosts on, a request to a host name other than localhost would be
    // read as a bucket name and bypass the per-key middleware's parsing.
    vhostBuckets: false,
    configureBuckets: [{ name: opts.bucket }],
  });
  makePutsAtomic(server.store);
  lookUpSynchronously(server.store);
  deleteTagsWithObjects(server.store);
  const credentials: LocalS3Credentials = {
    accessKeyId: LOCAL_S3_ACCESS_KEY_ID,
    secretAccessKey: opts.secretAccessKey ?? randomBytes(24).toString('base64url'),
  };
  const allowedOrigins = new Set(opts.allowedOrigins ?? []);
  const locks = new KeyedLocks();
  // Koa composes the stack when the server starts listening, so the front of the array runs first.
  server.middleware.unshift(
    trustNoOne({
      store: server.store,
      locks,
      signatures: new LocalS3Signatures(credentials),
      allowedOrigins,
      maxBodyBytes: MAX_POST_BODY_BYTES,
    }),
    serialisedConditionalRequests(server.store, locks),
  );
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    credentials,
    repairs,
    allowOrigin: (origin) => void allowedOrigins.add(origin),
    async stop() {
      const closed = server.close();
      // SDK clients keep connections alive; without this, close() waits for them to time out.
      server.httpServer?.closeAllConnections();
      await closed;
    },
  };
}

/** What the parent asks the worker of startLocalS3InWorker (s3-worker.ts), over the worker's port. */
export type S3WorkerRequest = { type: 'allowOrigin'; origin: string } | { type: 'stop' };

/**
 * startLocalS3 on a worker thread of its own, as the local stack runs it: the server's work (signature
 * checks, MD5s, file writes) then runs beside the API's event loop instead of on it, as S3 does beside a
 * Lambda. The worker loads the TypeScript sources through tsx, as `npm start` does. Resolves once the
 * server listens; rejects with the server's start-up error (a taken port keeps its EADDRINUSE code).
 */
export function startLocalS3InWorker(opts: LocalS3Options): Promise<LocalS3> {
  const entry = path.join(__dirname, 's3-worker.ts');
  // Resolved here: an eval worker resolves bare names from the working directory, which may be anywhere.
  const tsx = require.resolve('tsx/cjs/api');
  const worker = new Worker(
    `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(entry)});`,
    {
      eval: true,
      workerData: opts,
    },
  );
  type Reply =
    | {
        type: 'started';
        endpoint: string;
        port: number;
        credentials: LocalS3Credentials;
        repairs: StoreRepair[];
      }
    | { type: 'stopped' }
    | { type: 'failed'; code?: string; message: string };
  const next = () =>
    new Promise<Reply>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`The local S3 worker exited (code ${code}).`));
      worker.once('error', reject);
      worker.once('exit', onExit);
      worker.once('message', (reply: Reply) => {
        worker.off('error', reject);
        worker.off('exit', onExit);
        resolve(reply);
      });
    });
  return next().then(async (reply) => {
    if (reply.type !== 'started') {
      await worker.terminate();
      throw Object.assign(
        new Error(reply.type === 'failed' ? reply.message : 'The local S3 did not start.'),
        {
          code: reply.type === 'failed' ? reply.code : undefined,
        },
      );
    }
    return {
      endpoint: reply.endpoint,
      port: reply.port,
      credentials: reply.credentials,
      repairs: reply.repairs,
      allowOrigin: (origin) => worker.postMessage({ type: 'allowOrigin', origin } satisfies S3WorkerRequest),
      async stop() {
        const stopped = next();
        worker.postMessage({ type: 'stop' } satisfies S3WorkerRequest);
        const reply = await stopped;
        await worker.terminate();
        if (reply.type === 'failed') throw new Error(reply.message);
      },
    };
  });
}
