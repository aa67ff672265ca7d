import type { HeadObjectCommandOutput, S3Client } from '@aws-sdk/client-s3';
import type { NodeHttpHandlerOptions } from '@smithy/types';
import { randomUUID } from 'node:crypto';
import { badInput, ErrorCode, LymphoscopeError, tooLarge, unavailable } from '../errors';
import {
  ListPageOptions,
  ObjectInfo,
  ObjectStore,
  ObjectVersionInfo,
  PreconditionFailed,
  PutOptions,
  S3StoreConfig,
} from './object-store';
import { directTarget, type S3Answer, S3Requests } from './s3-requests';

/*
 * The SDK's client is required on first use, not imported above: the request path (GET, HEAD, PUT and
 * presigned GETs) goes through S3Requests wherever directTarget allows, and then a Lambda instance that
 * only predicts never loads @aws-sdk/client-s3 (about 0.1 s of its cold start). Not import(): the CLI
 * runs under tsx's CommonJS hook, which leaves import() to Node's ES loader.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const sdk = () => require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
const presignedPost = () =>
  require('@aws-sdk/s3-presigned-post') as typeof import('@aws-sdk/s3-presigned-post');
const requestPresigner = () =>
  require('@aws-sdk/s3-request-presigner') as typeof import('@aws-sdk/s3-request-presigner');
/* eslint-enable @typescript-eslint/no-require-imports */

const DEFAULT_CONNECTION_TIMEOUT_MS = 1500;
const DEFAULT_REQUEST_TIMEOUT_MS = 8000;
const DEFAULT_MAX_ATTEMPTS = 3;
const PING_TIMEOUT_MS = 3000;
const DEFAULT_LIST_LIMIT = 50_000;
/** S3's cap on a presigned URL's lifetime (SigV4: seven days). */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
/**
 * Object metadata naming the conditional write that produced the object (a random UUID per call):
 * see put(). Counted in the 2 KB of metadata like any other entry.
 */
export const WRITE_TOKEN = 'write-token';
/** The body size from which the SDK asks S3 to accept a PUT before sending its body (Expect: 100-continue). */
const EXPECT_CONTINUE_BYTES = 2 * 1024 * 1024;
/** S3's cap on user-defined metadata, keys and values together. */
const MAX_METADATA_BYTES = 2048;

/** Errors that mean "S3 did not answer usefully in time", as opposed to "we asked for something wrong". */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const TRANSIENT_ERROR_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
]);

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function statusOf(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode;
}

const NETWORK_ERROR_IN_MESSAGE = new RegExp(`\\b(${[...NETWORK_ERROR_CODES].join('|')})\\b`);

function isUnavailable(err: unknown, depth = 0): boolean {
  const e = err as (SdkError & { message?: string; cause?: unknown }) | undefined;
  if (!e || depth > 3) return false;
  if (e.code && NETWORK_ERROR_CODES.has(e.code)) return true;
  if (e.name && TRANSIENT_ERROR_NAMES.has(e.name)) return true;
  const status = statusOf(err);
  if (status !== undefined) return status >= 500 || status === 429;
  // The SDK's retry layer rewraps an error that is not an `instanceof Error` of its own realm (as in
  // jest's sandbox) into a bare Error, keeping only the message: "... connect ECONNREFUSED ...".
  if (typeof e.message === 'string' && NETWORK_ERROR_IN_MESSAGE.test(e.message)) return true;
  return isUnavailable(e.cause, depth + 1);
}

function isMissingKey(err: unknown): boolean {
  const name = (err as SdkError | undefined)?.name;
  // GetObject says NoSuchKey; HeadObject has no body, so the SDK can only say NotFound.
  return name === 'NoSuchKey' || name === 'NotFound' || (statusOf(err) === 404 && name !== 'NoSuchBucket');
}

function isPreconditionFailure(err: unknown): boolean {
  const status = statusOf(err);
  // 409 ConditionalRequestConflict: a concurrent conditional write to the same key was in flight.
  return status === 412 || (status === 409 && (err as SdkError).name === 'ConditionalRequestConflict');
}

/**
 * Turns an SDK failure into what a caller can act on: UNAVAILABLE when S3 could not be reached or kept
 * failing (the retries are spent by then), and otherwise the original error with the operation named,
 * so a misconfiguration (AccessDenied, NoSuchBucket) reaches the log as INTERNAL with its cause.
 */
function translate(err: unknown, operation: string, key?: string): Error {
  if (isUnavailable(err)) {
    const e = unavailable('Object storage did not answer; retry later.', { operation });
    e.cause = err;
    return e;
  }
  const name = (err as SdkError | undefined)?.name ?? 'Error';
  return new Error(`S3 ${operation}${key === undefined ? '' : ` '${key}'`} failed: ${name}`, { cause: err });
}

function checkKey(key: string): void {
  // Keys are built by storage/layout.ts from checked ids; this only guards against an empty, absurd or
  // path-like one slipping through. S3 itself would accept 'a/../b', but S3-compatible servers that
  // store objects as files (the local one included) resolve it outside their directory.
  if (key.length === 0 || Buffer.byteLength(key) > 1024) {
    throw badInput('An object key must be 1 to 1024 bytes long.', { keyLength: key.length });
  }
  if (key.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw badInput("An object key may not contain '.' or '..' segments.");
  }
}

function checkMetadata(metadata: Record<string, string>): void {
  let bytes = 0;
  for (const [name, value] of Object.entries(metadata)) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) {
      throw badInput(`Metadata name '${name}' must be lower-case letters, digits and '-'.`);
    }
    // HTTP headers carry them; S3 would mangle anything but printable ASCII (RFC 2047 encoding).
    if (!/^[\x20-\x7e]*$/.test(value)) {
      throw badInput(`Metadata '${name}' must be printable ASCII.`);
    }
    bytes += name.length + value.length;
  }
  if (bytes > MAX_METADATA_BYTES) {
    throw tooLarge(`Object metadata is limited to ${MAX_METADATA_BYTES} bytes.`, { bytes });
  }
}

function checkExpiry(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_PRESIGN_SECONDS) {
    throw badInput(`A presigned URL must expire in 1 to ${MAX_PRESIGN_SECONDS} seconds.`, { seconds });
  }
}

const TAG = /^[A-Za-z0-9 +\-=._:/@]{1,128}$/;

/** PutObject's `Tagging`: a URL query string, as S3 wants it. */
function tagging(tags: Record<string, string>): string {
  const entries = Object.entries(tags);
  if (entries.length > 10) throw badInput('At most 10 tags per object.');
  for (const [k, v] of entries) {
    if (!TAG.test(k) || !(v === '' || TAG.test(v))) throw badInput(`Tag '${k}' has an invalid key or value.`);
  }
  return new URLSearchParams(entries).toString();
}

/** CopySource is `bucket/key`, URL-encoded, with the slashes of the key kept. */
/** What GetObject and HeadObject say about an object; `size` when S3 gives no length. */
function objectInfo(
  key: string,
  out: Pick<HeadObjectCommandOutput, 'ContentLength' | 'ETag' | 'LastModified' | 'ContentType' | 'Metadata'>,
  size: number,
): ObjectInfo {
  return {
    key,
    size: out.ContentLength ?? size,
    etag: out.ETag ?? '',
    lastModified: out.LastModified,
    contentType: out.ContentType,
    metadata: out.Metadata ?? {},
  };
}

function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** ObjectInfo from the headers of a direct GetObject or HeadObject (lower-case names, as Node gives them). */
function answerInfo(key: string, answer: S3Answer, size: number): ObjectInfo {
  const header = (name: string): string | undefined => {
    const value = answer.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(answer.headers)) {
    if (name.startsWith('x-amz-meta-') && typeof value === 'string') metadata[name.slice(11)] = value;
  }
  const length = header('content-length');
  const lastModified = header('last-modified');
  return objectInfo(
    key,
    {
      ContentLength: length === undefined ? undefined : Number(length),
      ETag: header('etag'),
      LastModified: lastModified === undefined ? undefined : new Date(lastModified),
      ContentType: header('content-type'),
      Metadata: metadata,
    },
    size,
  );
}

/** A PutObject's headers, as the SDK's serializer writes them for the same input. */
export function putHeaders(
  length: number,
  opts: PutOptions,
  metadata: Record<string, string> | undefined,
  tags: string | undefined,
): Record<string, string> {
  // A body without a type gets the one the SDK's serializer gives it.
  const headers: Record<string, string> = {
    'content-length': String(length),
    'content-type': opts.contentType ?? 'application/octet-stream',
  };
  if (opts.ifMatch !== undefined) headers['if-match'] = opts.ifMatch;
  if (opts.ifNoneMatch !== undefined) headers['if-none-match'] = opts.ifNoneMatch;
  if (tags !== undefined) headers['x-amz-tagging'] = tags;
  for (const [name, value] of Object.entries(metadata ?? {})) headers[`x-amz-meta-${name}`] = value;
  // As the SDK's S3 middleware: a large body waits for S3 to accept the request (a refusal costs no upload).
  if (length >= EXPECT_CONTINUE_BYTES) headers.expect = '100-continue';
  return headers;
}

const asBuffer = (body: Uint8Array | string): Buffer =>
  typeof body === 'string'
    ? Buffer.from(body, 'utf8')
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength);

class S3ObjectStore implements ObjectStore {
  private sdkClient: S3Client | undefined;
  private readonly bucket: string;

  /** `direct`: the request path's calls without the SDK's client, where directTarget allows; else undefined. */
  constructor(
    private readonly cfg: S3StoreConfig,
    private readonly direct: S3Requests | undefined,
  ) {
    this.bucket = cfg.bucket;
  }

  /** The SDK's client, made on first use: listings, deletes, copies, tags, presigned POSTs, health. */
  private get client(): S3Client {
    return (this.sdkClient ??= createS3Client(this.cfg));
  }

  async put(key: string, body: Uint8Array | string, opts: PutOptions = {}): Promise<{ etag: string }> {
    checkKey(key);
    const conditional = opts.ifMatch !== undefined || opts.ifNoneMatch !== undefined;
    // A conditional write carries a token of its own, so that when its response is lost and the SDK
    // sends it again, the retry that meets the first attempt's own write recognises it (below).
    const token = conditional ? randomUUID() : undefined;
    const metadata = token === undefined ? opts.metadata : { ...opts.metadata, [WRITE_TOKEN]: token };
    if (metadata) checkMetadata(metadata);
    const tags = opts.tags ? tagging(opts.tags) : undefined;
    try {
      if (this.direct) {
        const bytes = asBuffer(body);
        const answer = await this.direct.send('PUT', key, {
          headers: putHeaders(bytes.byteLength, opts, metadata, tags),
          body: bytes,
        });
        const etag = answer.headers.etag;
        return { etag: typeof etag === 'string' ? etag : '' };
      }
      const out = await this.client.send(
        new (sdk().PutObjectCommand)({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          // Given explicitly: the SDK cannot tell the length of an empty body and warns of a stream.
          ContentLength: typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength,
          ContentType: opts.contentType,
          Metadata: metadata,
          IfNoneMatch: opts.ifNoneMatch,
          IfMatch: opts.ifMatch,
          Tagging: tags,
        }),
      );
      return { etag: out.ETag ?? '' };
    } catch (err) {
      // S3 answers If-Match on a deleted key with 404: for a compare-and-swap that is a lost race too.
      if (conditional && (isPreconditionFailure(err) || (opts.ifMatch !== undefined && isMissingKey(err)))) {
        // Lost to whom? If the object now holds this very write's token, an earlier attempt of this
        // same call took effect and only its answer was lost: that is success, not a conflict.
        const now = await this.head(key);
        if (now && token !== undefined && now.metadata[WRITE_TOKEN] === token) return { etag: now.etag };
        throw new PreconditionFailed(key);
      }
      throw translate(err, 'PutObject', key);
    }
  }

  async get(key: string): Promise<{ body: Buffer; info: ObjectInfo } | null> {
    checkKey(key);
    try {
      if (this.direct) {
        const answer = await this.direct.send('GET', key);
        return { body: answer.body, info: answerInfo(key, answer, answer.body.length) };
      }
      const out = await this.client.send(new (sdk().GetObjectCommand)({ Bucket: this.bucket, Key: key }));
      const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
      const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      return { body, info: objectInfo(key, out, body.length) };
    } catch (err) {
      if (isMissingKey(err)) return null;
      throw translate(err, 'GetObject', key);
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    checkKey(key);
    try {
      if (this.direct) return answerInfo(key, await this.direct.send('HEAD', key), 0);
      const out = await this.client.send(new (sdk().HeadObjectCommand)({ Bucket: this.bucket, Key: key }));
      return objectInfo(key, out, 0);
    } catch (err) {
      if (isMissingKey(err)) return null;
      throw translate(err, 'HeadObject', key);
    }
  }

  async listPage(
    prefix: string,
    opts: ListPageOptions = {},
  ): Promise<{ items: ObjectInfo[]; nextContinuationToken?: string }> {
    const maxKeys = opts.maxKeys ?? 1000;
    if (!Number.isInteger(maxKeys) || maxKeys < 1 || maxKeys > 1000) {
      throw badInput('maxKeys must be an integer from 1 to 1000.', { maxKeys });
    }
    try {
      const out = await this.client.send(
        new (sdk().ListObjectsV2Command)({
          Bucket: this.bucket,
          Prefix: prefix,
          StartAfter: opts.startAfter,
          ContinuationToken: opts.continuationToken,
          MaxKeys: maxKeys,
        }),
      );
      const items = (out.Contents ?? []).map((o): ObjectInfo => ({
        key: o.Key ?? '',
        size: o.Size ?? 0,
        etag: o.ETag ?? '',
        lastModified: o.LastModified,
        metadata: {},
      }));
      return {
        items,
        nextContinuationToken: out.IsTruncated ? out.NextContinuationToken : undefined,
      };
    } catch (err) {
      throw translate(err, 'ListObjectsV2');
    }
  }

  async listAll(prefix: string, opts: { limit?: number } = {}): Promise<ObjectInfo[]> {
    const limit = opts.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) throw badInput('limit must be a positive integer.', { limit });
    const all: ObjectInfo[] = [];
    let continuationToken: string | undefined;
    do {
      const page = await this.listPage(prefix, {
        continuationToken,
        maxKeys: Math.min(1000, limit - all.length),
      });
      all.push(...page.items);
      continuationToken = page.nextContinuationToken;
    } while (continuationToken && all.length < limit);
    return all;
  }

  async listVersions(prefix: string, opts: { limit?: number } = {}): Promise<ObjectVersionInfo[]> {
    const limit = opts.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) throw badInput('limit must be a positive integer.', { limit });
    const all: ObjectVersionInfo[] = [];
    let keyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    try {
      for (;;) {
        const out = await this.client.send(
          new (sdk().ListObjectVersionsCommand)({
            Bucket: this.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            VersionIdMarker: versionIdMarker,
            MaxKeys: Math.min(1000, limit - all.length),
          }),
        );
        const of = (o: { Key?: string; VersionId?: string; IsLatest?: boolean; LastModified?: Date }) => ({
          key: o.Key ?? '',
          versionId: o.VersionId ?? 'null',
          isLatest: o.IsLatest ?? false,
          lastModified: o.LastModified,
        });
        for (const v of out.Versions ?? []) all.push({ ...of(v), isDeleteMarker: false, size: v.Size ?? 0 });
        for (const m of out.DeleteMarkers ?? []) all.push({ ...of(m), isDeleteMarker: true, size: 0 });
        if (!out.IsTruncated || all.length >= limit) break;
        keyMarker = out.NextKeyMarker;
        versionIdMarker = out.NextVersionIdMarker;
      }
    } catch (err) {
      throw translate(err, 'ListObjectVersions');
    }
    return all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).slice(0, limit);
  }

  async deleteVersions(versions: ReadonlyArray<{ key: string; versionId: string }>): Promise<number> {
    versions.forEach((v) => checkKey(v.key));
    for (let start = 0; start < versions.length; start += 1000) {
      const batch = versions.slice(start, start + 1000);
      let out;
      try {
        out = await this.client.send(
          new (sdk().DeleteObjectsCommand)({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((v) => ({ Key: v.key, VersionId: v.versionId })), Quiet: true },
          }),
        );
      } catch (err) {
        throw translate(err, 'DeleteObjects');
      }
      // A version already gone is not an error in S3's answer; anything listed here (AccessDenied,
      // InternalError) was not removed, and the caller's job must retry it.
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchVersion' && e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        throw unavailable(`Object storage did not delete ${failed.length} object versions; retry.`, {
          operation: 'DeleteObjects',
          code: failed[0].Code,
        });
      }
    }
    return versions.length;
  }

  async getTags(key: string): Promise<Record<string, string> | null> {
    checkKey(key);
    try {
      const out = await this.client.send(
        new (sdk().GetObjectTaggingCommand)({ Bucket: this.bucket, Key: key }),
      );
      return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    } catch (err) {
      if (isMissingKey(err)) return null;
      throw translate(err, 'GetObjectTagging', key);
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.client.send(new (sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (isMissingKey(err)) return;
      throw translate(err, 'DeleteObject', key);
    }
  }

  async copy(fromKey: string, toKey: string, opts: { ifNoneMatch?: '*' } = {}): Promise<void> {
    checkKey(fromKey);
    checkKey(toKey);
    try {
      await this.client.send(
        new (sdk().CopyObjectCommand)({
          Bucket: this.bucket,
          Key: toKey,
          CopySource: copySource(this.bucket, fromKey),
          IfNoneMatch: opts.ifNoneMatch,
        }),
      );
    } catch (err) {
      if (opts.ifNoneMatch && isPreconditionFailure(err)) throw new PreconditionFailed(toKey);
      if (isMissingKey(err))
        throw new LymphoscopeError(ErrorCode.NOT_FOUND, 'The object to copy was not found.');
      throw translate(err, 'CopyObject', fromKey);
    }
  }

  async presignPost(
    key: string,
    opts: { expiresInSeconds: number; contentType: string; maxBytes: number },
  ): Promise<{ url: string; fields: Record<string, string> }> {
    checkKey(key);
    checkExpiry(opts.expiresInSeconds);
    if (!Number.isInteger(opts.maxBytes) || opts.maxBytes < 1) {
      throw badInput('maxBytes must be a positive integer.', { maxBytes: opts.maxBytes });
    }
    const post = await presignedPost().createPresignedPost(this.client, {
      Bucket: this.bucket,
      Key: key,
      // Every field given here becomes an exact-match condition of the policy too.
      Fields: { 'Content-Type': opts.contentType },
      Conditions: [['content-length-range', 1, opts.maxBytes]],
      Expires: opts.expiresInSeconds,
    });
    // A stable, documented order (docs/API.md): key first, the signature last.
    const { key: formKey, ...rest } = post.fields;
    return { url: post.url, fields: { key: formKey, ...rest } };
  }

  async presignGet(
    key: string,
    opts: { expiresInSeconds: number; contentDisposition?: string },
  ): Promise<string> {
    checkKey(key);
    checkExpiry(opts.expiresInSeconds);
    if (this.direct) {
      const query: Record<string, string> =
        opts.contentDisposition === undefined
          ? {}
          : { 'response-content-disposition': opts.contentDisposition };
      return this.direct.presignGet(key, opts.expiresInSeconds, query);
    }
    const command = new (sdk().GetObjectCommand)({
      Bucket: this.bucket,
      Key: key,
      ResponseContentDisposition: opts.contentDisposition,
    });
    return requestPresigner().getSignedUrl(this.client, command, { expiresIn: opts.expiresInSeconds });
  }

  async ping(): Promise<boolean> {
    try {
      await this.client.send(new (sdk().HeadBucketCommand)({ Bucket: this.bucket }), {
        abortSignal: AbortSignal.timeout(PING_TIMEOUT_MS),
      });
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * How both paths send and retry, from `cfg.timeouts`: the SDK's client takes `http` as its request
 * handler's options, and the direct path builds its NodeHttpHandler from the same.
 */
function transport(cfg: S3StoreConfig): { maxAttempts: number; http: NodeHttpHandlerOptions } {
  const timeouts = cfg.timeouts ?? {};
  const requestMs = timeouts.requestMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return {
    maxAttempts: timeouts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    http: {
      connectionTimeout: timeouts.connectionMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
      requestTimeout: requestMs,
      // Without this the request timeout only logs a warning and a silent server hangs the Lambda.
      throwOnRequestTimeout: true,
      // Bounds a stalled response body too (the request timeout ends at the response headers).
      socketTimeout: requestMs,
    },
  };
}

export function createS3Client(cfg: S3StoreConfig): S3Client {
  const { maxAttempts, http } = transport(cfg);
  return new (sdk().S3Client)({
    region: cfg.region,
    endpoint: cfg.endpoint,
    forcePathStyle: cfg.forcePathStyle ?? cfg.endpoint !== undefined,
    credentials: cfg.credentials,
    // The SDK's default since 3.729 adds CRC32 checksums to every upload (aws-chunked bodies with
    // trailers). The local S3 server stores such bodies mangled, and a presigned PUT would carry a
    // checksum of an empty body that real S3 then rejects. Checksums only where an API requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts,
    // Options rather than a NodeHttpHandler instance: the SDK builds its own, of the version it ships.
    requestHandler: http,
  });
}

/**
 * The only ObjectStore implementation: S3 on AWS, or an S3-compatible server at `cfg.endpoint`. Its
 * GETs, HEADs, PUTs and presigned GETs go without the SDK's client where `directTarget` allows and
 * `cfg.requests` is not 'sdk'.
 */
export function createS3ObjectStore(cfg: S3StoreConfig): ObjectStore {
  if (!cfg.bucket) throw badInput('An S3 bucket name is required.');
  const target = cfg.requests === 'sdk' ? undefined : directTarget(cfg);
  return new S3ObjectStore(cfg, target && new S3Requests(target, transport(cfg)));
}
