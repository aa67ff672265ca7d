import { createHash, randomUUID } from 'crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'fs';
import { dirname } from 'path';
import type S3rver from 's3rver';
import S3Bucket from 's3rver/lib/models/bucket';

/**
 * Where s3rver 3.7 falls short of S3 in ways Lymphoscope depends on, and the repairs. They use
 * s3rver's FilesystemStore methods (getMetadata, getResourcePath, putMetadata, listObjects), which
 * are stable in a package that has not changed since 2021; the lockfile pins it.
 *
 * 1. Conditional writes: s3rver ignores If-None-Match and If-Match on PutObject and CopyObject.
 * 2. Torn reads: s3rver answers a PUT before the bytes reach the file, and writes bytes, MD5 and
 *    metadata as three files, so a GET right after (or during) a PUT can see a truncated body or a
 *    mismatched ETag.
 * 3. ListObjectsV2 continuation tokens: s3rver encrypts them with DES, which OpenSSL 3 (Node 17+)
 *    no longer provides, so any truncated listing fails with InternalError.
 * 4. Keys with '..' segments: s3rver would write outside its directory; they are refused.
 * 5. Versions: s3rver keeps no versions and rejects ListObjectVersions. It is answered here as S3
 *    answers for a bucket that was never versioned: every object is one version, `VersionId` "null"
 *    (DeleteObjects with VersionId "null" then removes it). The deletion code path is the one used
 *    against the versioned bucket on AWS; only the number of versions per key differs (docs/DATA.md).
 * 6. Tags on PutObject (`x-amz-tagging`): s3rver ignores the header, and keeps an object's tags after
 *    the object is deleted or replaced. A whole-object PUT here sets exactly the tags it carries, and a
 *    delete removes them, as S3 does.
 * 7. Crash safety: s3rver writes an object's files in place, so a SIGKILL can leave one of them empty
 *    or truncated; every file is now written whole or not at all (makePutsAtomic; see s3-repair.ts).
 */

/** FIFO mutual exclusion per key. `release` may be called before `ready` settles, and more than once. */
export class KeyedLocks {
  private readonly tails = new Map<string, Promise<void>>();

  lock(key: string): { ready: Promise<void>; release: () => void } {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => held);
    this.tails.set(key, tail);
    return {
      ready: previous,
      release: () => {
        release();
        if (this.tails.get(key) === tail) this.tails.delete(key);
      },
    };
  }
}

const SUBRESOURCE_PARAMS = ['uploadId', 'uploads', 'partNumber', 'tagging', 'acl', 'retention', 'legal-hold'];
const PRECONDITION_MESSAGE = 'At least one of the pre-conditions you specified did not hold';

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function xmlFields(fields: Record<string, string | number | boolean | undefined>): string {
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `<${name}>${escapeXml(String(value))}</${name}>`)
    .join('');
}

export function respondWithError(
  ctx: S3rver.Context,
  status: number,
  code: string,
  message: string,
  detail: Record<string, string> = {},
): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error>${xmlFields({ Code: code, Message: message, ...detail, RequestId: randomUUID() })}</Error>`;
}

function header(ctx: S3rver.Context, name: string): string | undefined {
  const value = ctx.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `/bucket/some/key` → bucket and decoded key; `/bucket` or `/bucket/` → bucket alone; undefined for `/`. */
function parsePath(path: string): { bucket: string; key?: string } | undefined {
  const match = /^\/([^/]+)(?:\/(.*))?$/.exec(path);
  if (!match) return undefined;
  try {
    return {
      bucket: decodeURIComponent(match[1]),
      key: match[2] ? decodeURIComponent(match[2]) : undefined,
    };
  } catch {
    return undefined;
  }
}

/** The `x-amz-copy-source` header: `[/]bucket/key[?versionId=...]`, URL-encoded. */
function parseCopySource(value: string): { bucket: string; key: string } | undefined {
  const parsed = parsePath('/' + value.replace(/^\//, '').replace(/\?.*$/, ''));
  return parsed?.key === undefined ? undefined : { bucket: parsed.bucket, key: parsed.key };
}

/** `"abc"`, `W/"abc"` and `abc` name the same entity; S3 compares ETags without the quotes. */
function normaliseEtag(etag: string): string {
  return etag
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}

async function currentEtag(store: S3rver.Store, bucket: string, key: string): Promise<string | undefined> {
  try {
    return (await store.getMetadata(bucket, key)).etag;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Evaluates If-None-Match / If-Match of a whole-object write as S3 does. Returns true when the write
 * may go ahead; otherwise it has answered the request (412, or 404 for If-Match on a missing key).
 */
async function preconditionsHold(
  ctx: S3rver.Context,
  store: S3rver.Store,
  target: { bucket: string; key: string },
): Promise<boolean> {
  const ifNoneMatch = header(ctx, 'if-none-match');
  const ifMatch = header(ctx, 'if-match');
  if (ifNoneMatch === undefined && ifMatch === undefined) return true;
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') {
    respondWithError(
      ctx,
      501,
      'NotImplemented',
      'A header you provided implies functionality that is not implemented',
      {
        Header: 'If-None-Match',
      },
    );
    return false;
  }
  const etag = await currentEtag(store, target.bucket, target.key);
  if (ifNoneMatch !== undefined && etag !== undefined) {
    respondWithError(ctx, 412, 'PreconditionFailed', PRECONDITION_MESSAGE, { Condition: 'If-None-Match' });
    return false;
  }
  if (ifMatch !== undefined) {
    if (etag === undefined) {
      respondWithError(ctx, 404, 'NoSuchKey', 'The specified key does not exist.', { Key: target.key });
      return false;
    }
    const wanted = ifMatch.split(',').map(normaliseEtag);
    if (!wanted.includes('*') && !wanted.includes(normaliseEtag(etag))) {
      respondWithError(ctx, 412, 'PreconditionFailed', PRECONDITION_MESSAGE, { Condition: 'If-Match' });
      return false;
    }
  }
  return true;
}

/** Repairs 1 and 2 (with makePutsAtomic), and 3 by answering ListObjectsV2 itself. */
export function serialisedConditionalRequests(
  store: S3rver.Store,
  locks: KeyedLocks = new KeyedLocks(),
): S3rver.Middleware {
  return async (ctx, next) => {
    const target = ctx.method === 'OPTIONS' ? undefined : parsePath(ctx.path);
    if (!target) return next();
    const query = new URLSearchParams(ctx.querystring);
    if (target.key === undefined) {
      const listing =
        ctx.method !== 'GET'
          ? undefined
          : query.get('list-type') === '2'
            ? listObjectsV2
            : query.has('versions')
              ? listObjectVersions
              : undefined;
      if (!listing) return next();
      if (!(await store.getBucket(target.bucket))) {
        respondWithError(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist', {
          BucketName: target.bucket,
        });
        return;
      }
      return listing(ctx, store, target.bucket, query);
    }
    // s3rver maps keys to file paths with path.join: a '..' segment would reach outside its directory.
    if (target.key.split('/').some((segment) => segment === '.' || segment === '..')) {
      respondWithError(ctx, 400, 'InvalidArgument', "Key segments '.' and '..' are not supported here.", {
        ArgumentName: 'key',
      });
      return;
    }
    const objectTarget = { bucket: target.bucket, key: target.key };

    const copyHeader = header(ctx, 'x-amz-copy-source');
    const source = copyHeader === undefined ? undefined : parseCopySource(copyHeader);
    const names = new Set([objectTarget, ...(source ? [source] : [])].map((o) => `${o.bucket}/${o.key}`));
    // A fixed order, so two copies in opposite directions cannot deadlock.
    const held = [...names].sort().map((name) => locks.lock(name));

    // Held until s3rver has finished with the request and the response is fully sent (a GET streams
    // the file after the middleware returns). A request whose client left while it waited is dropped.
    let handled = false;
    let closed = false;
    const releaseIfDone = () => {
      if (handled && closed) held.forEach((h) => h.release());
    };
    ctx.res.once('close', () => {
      closed = true;
      releaseIfDone();
    });
    try {
      for (const h of held) await h.ready;
      if (closed) return;
      const wholeObjectWrite = ctx.method === 'PUT' && !SUBRESOURCE_PARAMS.some((p) => query.has(p));
      if (wholeObjectWrite && !(await preconditionsHold(ctx, store, objectTarget))) return;
      await next();
      if (wholeObjectWrite && ctx.status < 300) replaceTags(ctx, store, objectTarget);
    } finally {
      handled = true;
      releaseIfDone();
    }
  };
}

/** The tags of a whole-object PUT (`x-amz-tagging: k=v&k2=v2`) replace whatever the key had. */
function replaceTags(
  ctx: S3rver.Context,
  store: S3rver.Store,
  target: { bucket: string; key: string },
): void {
  const tagging = header(ctx, 'x-amz-tagging');
  const tags = [...new URLSearchParams(tagging ?? '')];
  const path = store.getResourcePath(target.bucket, target.key, 'tagging.xml');
  if (tags.length === 0) {
    removeQuietly(path);
    return;
  }
  const xml =
    '<Tagging><TagSet>' +
    tags.map(([k, v]) => `<Tag>${xmlFields({ Key: k, Value: v })}</Tag>`).join('') +
    '</TagSet></Tagging>';
  writeFileSync(path, xml);
}

/** Removes an object's tags with the object, so a later object under the same key starts without them. */
export function deleteTagsWithObjects(store: S3rver.Store): void {
  const deleteObject = store.deleteObject.bind(store);
  store.deleteObject = async (bucket, key) => {
    removeQuietly(store.getResourcePath(bucket, key, 'tagging.xml'));
    await deleteObject(bucket, key);
  };
}

/** A bucket listing this module answers itself, for a bucket that exists. */
type Listing = (
  ctx: S3rver.Context,
  store: S3rver.Store,
  bucket: string,
  query: URLSearchParams,
) => Promise<void>;

type ListedObject = Awaited<ReturnType<S3rver.Store['listObjects']>>['objects'][number];

/** The fields S3 lists for an object, in its order. */
const objectFields = (o: ListedObject) => ({
  Key: o.key,
  LastModified: o.lastModifiedDate.toISOString(),
  ETag: o.metadata.etag,
  Size: o.size,
  StorageClass: 'STANDARD',
});

/** A 200 with an S3 XML document `<root xmlns=...>body</root>`. */
function respondXml(ctx: S3rver.Context, root: string, body: string): void {
  ctx.status = 200;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<${root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${body}</${root}>`;
}

/**
 * ListObjectVersions for a server without versions: each object is its only version, `null`, latest.
 * Pagination uses the key marker alone (a key has one version here).
 */
const listObjectVersions: Listing = async (ctx, store, bucket, query) => {
  const maxKeys = Math.max(1, Math.min(1000, Number(query.get('max-keys') ?? '1000') || 1000));
  const prefix = query.get('prefix') ?? '';
  const keyMarker = query.get('key-marker') ?? '';
  const result = await store.listObjects(bucket, { prefix, startAfter: keyMarker, maxKeys });
  const last = result.objects[result.objects.length - 1]?.key;
  const versions = result.objects
    .map((o) => {
      const { Key, ...rest } = objectFields(o);
      return `<Version>${xmlFields({ Key, VersionId: 'null', IsLatest: true, ...rest })}</Version>`;
    })
    .join('');
  respondXml(
    ctx,
    'ListVersionsResult',
    xmlFields({
      Name: bucket,
      Prefix: prefix,
      KeyMarker: keyMarker,
      VersionIdMarker: '',
      MaxKeys: maxKeys,
      IsTruncated: result.isTruncated,
      NextKeyMarker: result.isTruncated ? last : undefined,
      NextVersionIdMarker: result.isTruncated ? 'null' : undefined,
    }) + versions,
  );
};

const encodeToken = (lastKey: string) => Buffer.from(lastKey, 'utf8').toString('base64url');
const decodeToken = (token: string) => Buffer.from(token, 'base64url').toString('utf8');

/** ListObjectsV2 with opaque tokens that are simply the last key returned, base64url-encoded. */
const listObjectsV2: Listing = async (ctx, store, bucket, query) => {
  const maxKeysParam = query.get('max-keys') ?? '1000';
  if (!/^\d+$/.test(maxKeysParam)) {
    respondWithError(
      ctx,
      400,
      'InvalidArgument',
      'Provided max-keys not an integer or within integer range',
      {
        ArgumentName: 'max-keys',
      },
    );
    return;
  }
  const maxKeys = Math.min(1000, Number(maxKeysParam));
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') || undefined;
  const continuationToken = query.get('continuation-token') ?? undefined;
  const startAfter =
    continuationToken !== undefined ? decodeToken(continuationToken) : (query.get('start-after') ?? '');

  const result =
    maxKeys === 0
      ? { objects: [], commonPrefixes: [], isTruncated: false }
      : await store.listObjects(bucket, { prefix, delimiter, startAfter, maxKeys });
  const lastKey = [...result.objects.map((o) => o.key), ...result.commonPrefixes].sort().pop();

  const contents = result.objects.map((o) => `<Contents>${xmlFields(objectFields(o))}</Contents>`).join('');
  const commonPrefixes = result.commonPrefixes
    .map((p) => `<CommonPrefixes>${xmlFields({ Prefix: p })}</CommonPrefixes>`)
    .join('');
  respondXml(
    ctx,
    'ListBucketResult',
    xmlFields({
      Name: bucket,
      Prefix: prefix,
      StartAfter: continuationToken === undefined && startAfter ? startAfter : undefined,
      ContinuationToken: continuationToken,
      NextContinuationToken: result.isTruncated && lastKey !== undefined ? encodeToken(lastKey) : undefined,
      KeyCount: result.objects.length + result.commonPrefixes.length,
      MaxKeys: maxKeysParam,
      Delimiter: delimiter,
      IsTruncated: result.isTruncated,
    }) +
      contents +
      commonPrefixes,
  );
};

async function readAll(content: NodeJS.ReadableStream | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(content)) return content;
  const chunks: Buffer[] = [];
  for await (const chunk of content) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Removes a file if it is there; an object without tags has no tags file, the usual case. */
function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Missing (or not removable): as before, the tags are then what the file says, or none.
  }
}

/** A temporary file beside `path`, renamed over it once written; s3-repair.ts removes those a crash leaves. */
const temporaryBeside = (path: string) => `${path}.${randomUUID()}.tmp`;

/** What temporaryBeside names. */
export const TEMPORARY_FILE = /\.[0-9a-f-]{36}\.tmp$/;

/** Writes a file whole or not at all: a temporary file beside it, then a rename over it. */
export function writeAtomically(path: string, content: Buffer | string): void {
  const temporary = temporaryBeside(path);
  writeFileSync(temporary, content);
  renameSync(temporary, path);
}

/**
 * Replaces s3rver's putObject and putMetadata so that no file of an object is ever half-written: each of
 * the three (bytes, MD5, metadata) is written to a temporary file beside it and renamed over it once
 * complete (s3-repair.ts removes temporaries a crash leaves). Across the three files, the order makes a
 * crash at any point leave a readable object: the old MD5 is removed first, so between the renames
 * s3rver recomputes it from whichever bytes are there instead of serving a stale ETag. Bodies are
 * buffered in memory; this server is for development and tests.
 *
 * The files are written with synchronous calls, in order: the temporaries, the MD5's removal, then the
 * renames. Each asynchronous call was a trip through libuv's thread pool (shared with the API's zlib and
 * libvips work when the server runs in the API's process or on its worker thread), and a prediction's
 * writes waited on five of them one after another (docs/PERFORMANCE.md, "Where the rest of a request
 * goes"). A body is in memory already, and this server is for development and tests.
 */
export function makePutsAtomic(store: S3rver.Store): void {
  const metadataJson = (metadata: Record<string, string>) =>
    JSON.stringify(
      Object.fromEntries(
        Object.entries(metadata).filter(
          ([name]) => STORED_METADATA.has(name) || name.startsWith('x-amz-meta-'),
        ),
      ),
      null,
      2,
    );
  store.putMetadata = async (bucket, key, metadata, md5) => {
    const metadataPath = store.getResourcePath(bucket, key, 'metadata.json');
    writeAtomically(metadataPath, metadataJson(metadata));
    if (md5) writeAtomically(store.getResourcePath(bucket, key, 'object.md5'), md5);
  };
  store.putObject = async (object) => {
    const body = await readAll(object.content);
    const md5 = createHash('md5').update(body).digest('hex');
    const path = (file: string) => store.getResourcePath(object.bucket, object.key, file);
    const temporary = (file: string) => temporaryBeside(path(file));
    const files = {
      object: { path: path('object'), temporary: temporary('object') },
      metadata: { path: path('metadata.json'), temporary: temporary('metadata.json') },
      md5: { path: path('object.md5'), temporary: temporary('object.md5') },
    };
    mkdirSync(dirname(files.object.path), { recursive: true });
    writeFileSync(files.object.temporary, body);
    writeFileSync(files.metadata.temporary, metadataJson(object.metadata));
    writeFileSync(files.md5.temporary, md5);
    rmSync(files.md5.path, { force: true });
    renameSync(files.metadata.temporary, files.metadata.path);
    renameSync(files.object.temporary, files.object.path);
    renameSync(files.md5.temporary, files.md5.path);
    return { size: body.length, md5 };
  };
}

/**
 * Answers the lookups s3rver makes on every request with synchronous file system calls: whether the
 * bucket exists, its CORS and website configuration (usually none), and an object's metadata (every GET
 * and HEAD, and every conditional write). As asynchronous calls each was a trip through libuv's thread
 * pool, one after another (makePutsAtomic says why that matters). The answers are s3rver's own: an object
 * whose MD5 file is missing (a crash between the renames above) and a configuration that exists are
 * still read by s3rver's methods.
 */
export function lookUpSynchronously(store: S3rver.Store): void {
  const getMetadata = store.getMetadata.bind(store);
  const getSubresource = store.getSubresource.bind(store);
  store.getBucket = async (bucket) => {
    try {
      const stat = statSync(store.getBucketPath(bucket));
      return stat.isDirectory() ? new S3Bucket(bucket, stat.birthtime) : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  };
  store.getSubresource = async (bucket, key, resourceType) => {
    try {
      statSync(store.getResourcePath(bucket, key, `${resourceType}.xml`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return getSubresource(bucket, key, resourceType);
  };
  store.getMetadata = async (bucket, key) => {
    const objectPath = store.getResourcePath(bucket, key, 'object');
    // Throws ENOENT for a missing object, as s3rver's does.
    const stat = statSync(objectPath);
    let md5: string;
    try {
      md5 = readFileSync(store.getResourcePath(bucket, key, 'object.md5'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return getMetadata(bucket, key); // s3rver computes the MD5 from the bytes and stores it
    }
    let stored: Record<string, string> | undefined;
    try {
      stored = JSON.parse(readFileSync(store.getResourcePath(bucket, key, 'metadata.json'), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return {
      ...stored,
      etag: JSON.stringify(md5),
      'last-modified': stat.mtime.toUTCString(),
      // A number, as s3rver answers it (the declared type lists what our callers read: strings).
      'content-length': stat.size as unknown as string,
    };
  };
}

/** What s3rver keeps of an object's metadata besides x-amz-meta-* (S3Object.ALLOWED_METADATA). */
const STORED_METADATA = new Set([
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-type',
  'expires',
  'x-amz-storage-class',
  'x-amz-website-redirect-location',
]);
