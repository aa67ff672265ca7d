import { timingSafeEqual } from 'crypto';
import type { SignatureV4 } from '@smithy/signature-v4';
import { s3Signer } from '../storage/s3-signer';

/**
 * SigV4 verification for the local S3, by re-signing: the request as received is rebuilt and signed
 * again with the SDK's own signer (@smithy/signature-v4, the code that signed it on the client side)
 * and the local secret; the two signatures must be equal. s3rver 3 checks only the access key id of a
 * SigV4 request, so without this anyone who can reach 127.0.0.1 (a web page in the browser included)
 * could write any key: one record under keys/ is a working ADMIN key.
 *
 * Three forms, as S3 accepts them: the Authorization header, a presigned URL (X-Amz-* query
 * parameters, payload UNSIGNED-PAYLOAD), and a browser POST's policy (signature of the base64 policy
 * document, whose conditions the caller checks: see s3-browser-post.ts).
 *
 * Not checked: the body against a hex x-amz-content-sha256 (a signed request replayed with another
 * body within its 15 minutes would pass). The threat here is a caller without the secret, not a
 * man in the middle on the loopback interface.
 */

export interface LocalS3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export type Verdict = { ok: true } | { ok: false; status: number; code: string; message: string };

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** S3 refuses a header-signed request whose date is further than this from its clock. */
const MAX_SKEW_MS = 15 * 60 * 1000;
const MAX_PRESIGNED_SECONDS = 7 * 24 * 3600;
const PRESIGN_PARAMS = new Set([
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
]);

export interface ReceivedRequest {
  method: string;
  /** Host header as received, e.g. `127.0.0.1:4568`. */
  host: string;
  /** Still percent-encoded, as sent. */
  path: string;
  /** Without '?'. */
  querystring: string;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
}

const denied = (code: string, message: string, status = 403): Verdict => ({
  ok: false,
  status,
  code,
  message,
});

/** `20260101T120000Z` → Date, or undefined when malformed. */
function parseAmzDate(value: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? '');
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function sameSignature(given: string, computed: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(computed);
  return a.length === b.length && timingSafeEqual(a, b);
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export class LocalS3Signatures {
  constructor(private readonly credentials: LocalS3Credentials) {}

  private signer(region: string): SignatureV4 {
    return s3Signer(this.credentials, region, { applyChecksum: false });
  }

  /** `<id>/<yyyymmdd>/<region>/s3/aws4_request` → its parts, checked against our key and `date`. */
  private scope(credential: string | undefined, date: Date): { region: string } | Verdict {
    const parts = (credential ?? '').split('/');
    if (parts.length !== 5 || parts[3] !== 's3' || parts[4] !== 'aws4_request')
      return denied('AuthorizationHeaderMalformed', 'The credential scope is malformed.', 400);
    if (parts[0] !== this.credentials.accessKeyId)
      return denied(
        'InvalidAccessKeyId',
        'The AWS Access Key Id you provided does not exist in our records.',
      );
    if (parts[1] !== date.toISOString().slice(0, 10).replace(/-/g, ''))
      return denied(
        'AuthorizationHeaderMalformed',
        'The credential date does not match the request date.',
        400,
      );
    return { region: parts[2] };
  }

  /** A request signed in its Authorization header or by presigned query parameters; anonymous ones fail. */
  async verifyRequest(req: ReceivedRequest): Promise<Verdict> {
    const query = new URLSearchParams(req.querystring);
    const authorization = first(req.headers.authorization);
    if (authorization !== undefined && query.has('X-Amz-Signature'))
      return denied('InvalidArgument', 'Only one auth mechanism allowed.', 400);
    if (authorization !== undefined) return this.verifyHeader(req, query, authorization);
    if (query.has('X-Amz-Signature')) return this.verifyPresigned(req, query);
    return denied('AccessDenied', 'Anonymous access is not allowed: sign the request (SigV4).');
  }

  private rebuild(req: ReceivedRequest, query: URLSearchParams, signedHeaders: string[], drop: Set<string>) {
    const [hostname, port] = req.host.split(':');
    const headers: Record<string, string> = {};
    for (const name of signedHeaders) {
      const value = name === 'host' ? req.host : req.headers[name];
      if (value === undefined) return undefined;
      headers[name] = Array.isArray(value) ? value.join(',') : value;
    }
    const params: Record<string, string | string[]> = {};
    for (const [name, value] of query) {
      if (drop.has(name)) continue;
      const existing = params[name];
      params[name] = existing === undefined ? value : [...([] as string[]).concat(existing), value];
    }
    return {
      method: req.method,
      protocol: 'http:',
      hostname,
      port: port === undefined ? undefined : Number(port),
      path: req.path,
      query: params,
      headers,
    };
  }

  private async verifyHeader(
    req: ReceivedRequest,
    query: URLSearchParams,
    authorization: string,
  ): Promise<Verdict> {
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(
        authorization.trim(),
      );
    if (!m) return denied('AuthorizationHeaderMalformed', 'The authorization header is malformed.', 400);
    const [, credential, signedHeaderList, signature] = m;
    const date = parseAmzDate(first(req.headers['x-amz-date']));
    if (!date) return denied('AccessDenied', 'AWS authentication requires a valid x-amz-date header.');
    if (Math.abs(Date.now() - date.getTime()) > MAX_SKEW_MS)
      return denied(
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
      );
    const scope = this.scope(credential, date);
    if ('ok' in scope) return scope;
    const signedHeaders = signedHeaderList.split(';');
    if (!signedHeaders.includes('host') || !signedHeaders.includes('x-amz-content-sha256'))
      return denied('AccessDenied', 'host and x-amz-content-sha256 must be signed.');
    const request = this.rebuild(req, query, signedHeaders, new Set());
    if (!request) return denied('SignatureDoesNotMatch', 'A signed header is missing from the request.');
    const signed = await this.signer(scope.region).sign(request, {
      signingDate: date,
      signingRegion: scope.region,
      signableHeaders: new Set(signedHeaders),
    });
    const recomputed =
      /Signature=([0-9a-f]{64})$/.exec(String(signed.headers.authorization ?? ''))?.[1] ?? '';
    return sameSignature(signature, recomputed) ? { ok: true } : mismatch();
  }

  private async verifyPresigned(req: ReceivedRequest, query: URLSearchParams): Promise<Verdict> {
    if (query.get('X-Amz-Algorithm') !== ALGORITHM)
      return denied('AuthorizationQueryParametersError', `X-Amz-Algorithm must be ${ALGORITHM}.`, 400);
    const date = parseAmzDate(query.get('X-Amz-Date') ?? undefined);
    const expires = Number(query.get('X-Amz-Expires'));
    const signedHeaderList = query.get('X-Amz-SignedHeaders');
    if (
      !date ||
      !Number.isInteger(expires) ||
      expires < 1 ||
      expires > MAX_PRESIGNED_SECONDS ||
      !signedHeaderList
    )
      return denied('AuthorizationQueryParametersError', 'The presigned URL is malformed.', 400);
    if (date.getTime() - Date.now() > MAX_SKEW_MS) return denied('AccessDenied', 'Request is not valid yet.');
    if (Date.now() > date.getTime() + expires * 1000) return denied('AccessDenied', 'Request has expired');
    const scope = this.scope(query.get('X-Amz-Credential') ?? undefined, date);
    if ('ok' in scope) return scope;
    const signedHeaders = signedHeaderList.split(';');
    if (!signedHeaders.includes('host')) return denied('AccessDenied', 'host must be signed.');
    // The payload of a presigned request is UNSIGNED-PAYLOAD. The SDK's presigner puts it in a header
    // that the signer hoists into the query; it goes back into a header so the signer finds it again.
    const payloadParam = [...query.keys()].find((name) => name.toLowerCase() === 'x-amz-content-sha256');
    const drop = new Set([...PRESIGN_PARAMS, ...(payloadParam ? [payloadParam] : [])]);
    const request = this.rebuild(req, query, signedHeaders, drop);
    if (!request) return denied('SignatureDoesNotMatch', 'A signed header is missing from the request.');
    const payloadHeader = payloadParam ?? 'x-amz-content-sha256';
    (request.headers as Record<string, string>)[payloadHeader] = 'UNSIGNED-PAYLOAD';
    const presigned = await this.signer(scope.region).presign(request, {
      signingDate: date,
      expiresIn: expires,
      signingRegion: scope.region,
      signableHeaders: new Set(signedHeaders),
      unhoistableHeaders: new Set([...signedHeaders, ...(payloadParam ? [] : ['x-amz-content-sha256'])]),
      // Not given as a query parameter: then it was not part of what was signed.
      unsignableHeaders: payloadParam ? undefined : new Set(['x-amz-content-sha256']),
    });
    const recomputed = String(presigned.query?.['X-Amz-Signature'] ?? '');
    return sameSignature(query.get('X-Amz-Signature') ?? '', recomputed) ? { ok: true } : mismatch();
  }

  /**
   * A browser POST's signature: the hex HMAC of the base64 policy under the signing key of the
   * credential's scope. The policy's expiry and conditions are the caller's to check.
   */
  async verifyPolicy(fields: {
    policy: string;
    algorithm?: string;
    credential?: string;
    date?: string;
    signature?: string;
  }): Promise<Verdict> {
    if (fields.algorithm !== ALGORITHM)
      return denied('InvalidArgument', `x-amz-algorithm must be ${ALGORITHM}.`, 400);
    const date = parseAmzDate(fields.date);
    if (!date) return denied('InvalidArgument', 'x-amz-date is malformed.', 400);
    const scope = this.scope(fields.credential, date);
    if ('ok' in scope) return scope;
    const recomputed = await this.signer(scope.region).sign(fields.policy, {
      signingDate: date,
      signingRegion: scope.region,
      signingService: 's3',
    });
    return sameSignature(fields.signature ?? '', recomputed) ? { ok: true } : mismatch();
  }
}

function mismatch(): Verdict {
  return denied(
    'SignatureDoesNotMatch',
    'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
  );
}
