import type S3rver from 's3rver';
import type { KeyedLocks } from './s3rver-compat';
import { respondWithError } from './s3rver-compat';
import type { LocalS3Signatures } from './s3-signature';

/**
 * Browser-based uploads (POST Object with a signed policy), as S3 does them, for the local S3.
 * s3rver 3 stores whatever a POST carries and ignores the policy: no expiry, no key condition, no
 * content-length-range, so a presigned POST would bound nothing. Here the policy is verified (its
 * signature, its expiration, every condition, every form field covered by one) and the file is
 * refused with S3's EntityTooLarge / EntityTooSmall when outside the content-length-range, before
 * anything is stored.
 *
 * The body is read into memory, at most `maxBodyBytes` of it: a body larger than that is refused
 * after reading no more, whatever its policy says (a dev server need not take more; S3 itself caps
 * POST uploads at 5 GB).
 */

type Condition =
  | { kind: 'eq'; field: string; value: string }
  | { kind: 'starts-with'; field: string; prefix: string }
  | { kind: 'range'; min: number; max: number };

/** Form fields S3 does not require the policy to mention. */
const UNCONDITIONED_FIELDS = new Set(['policy', 'x-amz-signature', 'file']);

function parseConditions(raw: unknown): Condition[] | undefined {
  if (!Array.isArray(raw)) return undefined;
  const conditions: Condition[] = [];
  for (const c of raw) {
    if (Array.isArray(c)) {
      const [op, a, b] = c as unknown[];
      if (typeof op !== 'string') return undefined;
      const name = op.toLowerCase();
      if (name === 'content-length-range') {
        if (!Number.isInteger(a) || !Number.isInteger(b)) return undefined;
        conditions.push({ kind: 'range', min: a as number, max: b as number });
      } else if (
        (name === 'eq' || name === 'starts-with') &&
        typeof a === 'string' &&
        typeof b === 'string'
      ) {
        if (!a.startsWith('$')) return undefined;
        const field = a.slice(1).toLowerCase();
        conditions.push(
          name === 'eq' ? { kind: 'eq', field, value: b } : { kind: 'starts-with', field, prefix: b },
        );
      } else return undefined;
    } else if (c && typeof c === 'object') {
      const entries = Object.entries(c as Record<string, unknown>);
      if (entries.length !== 1 || typeof entries[0][1] !== 'string') return undefined;
      conditions.push({ kind: 'eq', field: entries[0][0].toLowerCase(), value: entries[0][1] });
    } else return undefined;
  }
  return conditions;
}

async function readBody(ctx: S3rver.Context, maxBytes: number): Promise<Buffer | null> {
  const declared = Number(ctx.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function isBrowserPost(ctx: S3rver.Context, bucketOnly: boolean): boolean {
  return (
    ctx.method === 'POST' &&
    bucketOnly &&
    /^multipart\/form-data/i.test(String(ctx.headers['content-type'] ?? '')) &&
    ctx.headers.authorization === undefined
  );
}

export async function handleBrowserPost(
  ctx: S3rver.Context,
  bucket: string,
  deps: { store: S3rver.Store; locks: KeyedLocks; signatures: LocalS3Signatures; maxBodyBytes: number },
): Promise<void> {
  if (!(await deps.store.getBucket(bucket))) {
    respondWithError(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
    return;
  }
  const body = await readBody(ctx, deps.maxBodyBytes);
  if (body === null) {
    respondWithError(ctx, 400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
      MaxSizeAllowed: String(deps.maxBodyBytes),
    });
    // The rest of the body is not read: the connection cannot carry another request.
    ctx.set('Connection', 'close');
    return;
  }
  let form: FormData;
  try {
    form = await new Response(new Uint8Array(body), {
      headers: { 'content-type': String(ctx.headers['content-type']) },
    }).formData();
  } catch {
    respondWithError(
      ctx,
      400,
      'MalformedPOSTRequest',
      'The body of your POST request is not well-formed multipart/form-data.',
    );
    return;
  }
  // Field names are case-insensitive; S3 ignores whatever follows the file.
  const fields = new Map<string, string>();
  let file: { bytes: Buffer; name: string } | undefined;
  const entries: Array<[string, FormDataEntryValue]> = [];
  form.forEach((value, name) => entries.push([name, value]));
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (lower === 'file') {
      file =
        typeof value === 'string'
          ? { bytes: Buffer.from(value), name: '' }
          : { bytes: Buffer.from(await value.arrayBuffer()), name: value.name };
      break;
    }
    if (typeof value === 'string') fields.set(lower, value);
  }
  fields.set('bucket', fields.get('bucket') ?? bucket);
  const policyB64 = fields.get('policy');
  if (!file || !policyB64 || !fields.has('key')) {
    respondWithError(
      ctx,
      400,
      'InvalidArgument',
      'A POST upload needs key, policy, its signature and a file.',
    );
    return;
  }
  const verdict = await deps.signatures.verifyPolicy({
    policy: policyB64,
    algorithm: fields.get('x-amz-algorithm'),
    credential: fields.get('x-amz-credential'),
    date: fields.get('x-amz-date'),
    signature: fields.get('x-amz-signature'),
  });
  if (!verdict.ok) {
    respondWithError(ctx, verdict.status, verdict.code, verdict.message);
    return;
  }
  let policy: { expiration?: unknown; conditions?: unknown };
  try {
    policy = JSON.parse(Buffer.from(policyB64, 'base64').toString('utf8'));
  } catch {
    respondWithError(ctx, 400, 'InvalidPolicyDocument', 'Invalid Policy: the policy is not valid JSON.');
    return;
  }
  const conditions = parseConditions(policy.conditions);
  const expiration = typeof policy.expiration === 'string' ? Date.parse(policy.expiration) : NaN;
  if (!conditions || Number.isNaN(expiration)) {
    respondWithError(
      ctx,
      400,
      'InvalidPolicyDocument',
      'Invalid Policy: expiration or conditions are malformed.',
    );
    return;
  }
  if (Date.now() > expiration) {
    respondWithError(ctx, 403, 'AccessDenied', 'Invalid according to Policy: Policy expired.');
    return;
  }
  if (bucket !== fields.get('bucket')) {
    respondWithError(ctx, 403, 'AccessDenied', 'Invalid according to Policy: the bucket does not match.');
    return;
  }
  const key = fields.get('key')!.replace(/\$\{filename\}/g, file.name);
  fields.set('key', key);
  for (const condition of conditions) {
    const failed = (() => {
      switch (condition.kind) {
        case 'eq':
          return fields.get(condition.field) !== condition.value;
        case 'starts-with':
          return !(fields.get(condition.field) ?? '').startsWith(condition.prefix);
        case 'range':
          return false;
        default: {
          const never: never = condition;
          return never;
        }
      }
    })();
    if (failed) {
      respondWithError(ctx, 403, 'AccessDenied', 'Invalid according to Policy: Policy Condition failed.', {
        Condition: JSON.stringify(condition),
      });
      return;
    }
  }
  for (const name of fields.keys()) {
    const covered =
      UNCONDITIONED_FIELDS.has(name) ||
      name.startsWith('x-ignore-') ||
      conditions.some((c) => c.kind !== 'range' && c.field === name);
    if (!covered) {
      respondWithError(ctx, 403, 'AccessDenied', `Invalid according to Policy: Extra input fields: ${name}`);
      return;
    }
  }
  for (const range of conditions.filter((c) => c.kind === 'range')) {
    if (file.bytes.length > range.max) {
      respondWithError(ctx, 400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
        ProposedSize: String(file.bytes.length),
        MaxSizeAllowed: String(range.max),
      });
      return;
    }
    if (file.bytes.length < range.min) {
      respondWithError(
        ctx,
        400,
        'EntityTooSmall',
        'Your proposed upload is smaller than the minimum allowed size',
        {
          ProposedSize: String(file.bytes.length),
          MinSizeAllowed: String(range.min),
        },
      );
      return;
    }
  }
  if (key.length === 0 || key.split('/').some((segment) => segment === '.' || segment === '..')) {
    respondWithError(ctx, 400, 'InvalidArgument', "Key segments '.' and '..' are not supported here.");
    return;
  }
  const metadata: Record<string, string> = {};
  for (const [name, value] of fields) {
    if (name === 'content-type' || name.startsWith('x-amz-meta-')) metadata[name] = value;
  }
  const lock = deps.locks.lock(`${bucket}/${key}`);
  let md5: string;
  try {
    await lock.ready;
    ({ md5 } = await deps.store.putObject({ bucket, key, content: file.bytes, metadata }));
  } finally {
    lock.release();
  }
  ctx.set('ETag', `"${md5}"`);
  ctx.set('Location', `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`);
  const status = fields.get('success_action_status');
  ctx.status = status === '200' || status === '201' ? Number(status) : 204;
  ctx.body = status === '201' ? '' : null;
}
