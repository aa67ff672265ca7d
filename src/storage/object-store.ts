/**
 * The port every service uses to reach object storage. There is one adapter
 * (`s3-object-store.ts`: the request path's calls through `s3-requests.ts`, the rest over
 * @aws-sdk/client-s3): production points it at Amazon S3, local runs and tests at an S3 server on
 * 127.0.0.1 (`src/local/s3-server.ts`). Keeping a single adapter means the conditional writes, ETags and
 * presigned URLs the registry relies on are exercised by every test, on the direct path; the SDK's client
 * (LYMPHOSCOPE_S3_REQUESTS=sdk) is held to the same requests and answers by test/storage/s3-requests.test.ts
 * and runs the conditional-write tests too.
 */

export interface ObjectInfo {
  key: string;
  size: number;
  /** As S3 returns it: the quoted hex MD5 for single-part uploads, e.g. `"9e107d9d372bb6826bd81d3542a419d6"`. */
  etag: string;
  lastModified?: Date;
  /** Absent in listings: S3 does not return it there. */
  contentType?: string;
  /** User metadata (`x-amz-meta-*`), keys lower-cased. Empty in listings: S3 does not return it there. */
  metadata: Record<string, string>;
}

export interface PutOptions {
  contentType?: string;
  /** Keys: lower-case letters, digits and '-'; values: printable ASCII; at most 2 KB in all (S3's limit). */
  metadata?: Record<string, string>;
  /** Create only: fails with PreconditionFailed if the key exists. */
  ifNoneMatch?: '*';
  /** Compare and swap: fails with PreconditionFailed unless the object exists with exactly this ETag. */
  ifMatch?: string;
  /**
   * Object tags (S3 lifecycle rules can select on them: retention, docs/DATA.md). Keys and values:
   * letters, digits, '+', '-', '=', '.', '_', ':', '/', at most 10 tags.
   */
  tags?: Record<string, string>;
}

/** One version of a key, or a delete marker (a versioned bucket keeps both until they are removed). */
export interface ObjectVersionInfo {
  key: string;
  /** 'null' for an object written while the bucket was unversioned (and on the local server: see s3rver-compat). */
  versionId: string;
  isDeleteMarker: boolean;
  isLatest: boolean;
  size: number;
  lastModified?: Date;
}

export interface ListPageOptions {
  startAfter?: string;
  continuationToken?: string;
  /** 1 to 1000; S3 returns at most 1000 whatever is asked. */
  maxKeys?: number;
}

export interface ObjectStore {
  /**
   * Writes the whole object. A failed `ifNoneMatch` / `ifMatch` condition throws PreconditionFailed.
   * Conditional writes are idempotent across retries: when an attempt took effect but its
   * answer was lost, the retry that meets that write reports success, not PreconditionFailed.
   */
  put(key: string, body: Uint8Array | string, opts?: PutOptions): Promise<{ etag: string }>;
  /** The whole object, or null when the key does not exist. */
  get(key: string): Promise<{ body: Buffer; info: ObjectInfo } | null>;
  head(key: string): Promise<ObjectInfo | null>;
  /** One page of keys under `prefix`, in lexicographic (UTF-8 binary) order. */
  listPage(
    prefix: string,
    opts?: ListPageOptions,
  ): Promise<{ items: ObjectInfo[]; nextContinuationToken?: string }>;
  /**
   * Keys under `prefix`, in order, following continuation tokens: at most `limit` of them (default
   * 50,000). To tell "exactly N" from "more than N", ask for N + 1.
   */
  listAll(prefix: string, opts?: { limit?: number }): Promise<ObjectInfo[]>;
  /** Every version and delete marker under `prefix` (ListObjectVersions), at most `limit` (default 50,000). */
  listVersions(prefix: string, opts?: { limit?: number }): Promise<ObjectVersionInfo[]>;
  /**
   * Removes exactly these versions for good (DeleteObjects with VersionId, 1000 per request): nothing
   * is left to restore. Idempotent: a version already gone counts as removed. Returns how many were asked.
   */
  deleteVersions(versions: ReadonlyArray<{ key: string; versionId: string }>): Promise<number>;
  /** The object's tags, or null when the key does not exist. */
  getTags(key: string): Promise<Record<string, string> | null>;
  /** Idempotent: deleting a missing key succeeds. */
  delete(key: string): Promise<void>;
  /** Server-side copy with metadata. NOT_FOUND if the source is missing; PreconditionFailed on `ifNoneMatch`. */
  copy(fromKey: string, toKey: string, opts?: { ifNoneMatch?: '*' }): Promise<void>;
  /**
   * A browser-style upload grant (S3 POST Object with a signed policy): POST a multipart form of
   * `fields`, then the file as the last part named `file`, to `url`. The policy pins the key and the
   * Content-Type, bounds the file to `maxBytes` (content-length-range: storage itself refuses a larger
   * body with EntityTooLarge) and expires after `expiresInSeconds`.
   */
  presignPost(
    key: string,
    opts: { expiresInSeconds: number; contentType: string; maxBytes: number },
  ): Promise<{ url: string; fields: Record<string, string> }>;
  /** A URL that GETs the object without credentials; `contentDisposition` sets the download's file name. */
  presignGet(key: string, opts: { expiresInSeconds: number; contentDisposition?: string }): Promise<string>;
  /** True when the bucket answers (HeadBucket) within a few seconds. Never throws. */
  ping(): Promise<boolean>;
}

/**
 * A conditional write lost: the key already existed (`ifNoneMatch: '*'`), or its ETag was no longer the
 * one given (`ifMatch`, including when the key has since been deleted). Internal: services translate it
 * into a CONFLICT the client can act on (see JsonDocuments).
 */
export class PreconditionFailed extends Error {
  constructor(readonly key: string) {
    super(`Precondition failed for '${key}'`);
    this.name = 'PreconditionFailed';
  }
}

export interface S3StoreConfig {
  bucket: string;
  region: string;
  /** Only for S3-compatible servers, e.g. the local one: `http://127.0.0.1:4568`. Absent on AWS. */
  endpoint?: string;
  /** Path-style URLs (`/bucket/key`); required by the local server, default true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Absent on AWS: the Lambda role's credentials come from the default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * 'sdk' sends every call through the SDK's client; by default GETs, HEADs, PUTs and presigned GETs go
   * without it where they can (s3-requests.ts), signed, timed out and retried the same way.
   */
  requests?: 'direct' | 'sdk';
  /** Bounds on waiting for S3; the defaults suit Lambda (a 29 s API Gateway limit). */
  timeouts?: {
    /** TCP connect, per attempt (default 1500 ms). */
    connectionMs?: number;
    /** Sending the request until the response headers, per attempt (default 8000 ms). */
    requestMs?: number;
    /** Attempts in all, first included (default 3). */
    maxAttempts?: number;
  };
}
