import {
  StandardRetryStrategy,
  isServerError,
  isThrottlingError,
  isTransientError,
} from '@smithy/core/retry';
import { HttpRequest } from '@smithy/core/transport';
import { NodeHttpHandler, streamCollector } from '@smithy/node-http-handler';
import type { SignatureV4 } from '@smithy/signature-v4';
import type { NodeHttpHandlerOptions, RetryErrorInfo, RetryErrorType, SdkError } from '@smithy/types';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { S3StoreConfig } from './object-store';
import { s3Signer } from './s3-signer';

/**
 * The S3 calls of the request path (GetObject, HeadObject, PutObject and presigned GETs) without the
 * SDK's client. A prediction makes 2 GETs and 4 or 5 PUTs; through @aws-sdk/client-s3 each cost the
 * process 2 to 3 ms of CPU more than signing and sending it (its middleware stack and schema-driven
 * serialisation: docs/PERFORMANCE.md, "One S3 request's cost"), and the client's modules cost a cold
 * start about 0.1 s before the first request.
 *
 * Built from the SDK's own parts, so that what a request does on the wire and when it is retried stay
 * the SDK's: @smithy/signature-v4 signs (as the S3 client does: the path as sent, the payload's SHA-256
 * in x-amz-content-sha256), @smithy/node-http-handler sends (the same connection, request and socket
 * timeouts and keep-alive agent), and @smithy/core/retry's StandardRetryStrategy decides on the SDK's
 * own classification of errors (transient, throttling, clock skew) whether and when to try again.
 * Failures are shaped as the SDK's (`name` is S3's error code, `$metadata.httpStatusCode`), so the
 * store translates both paths alike. test/storage/s3-requests.test.ts checks every request against the
 * one the SDK builds for the same call.
 *
 * Used only where the SDK would take the same credentials and endpoint without asking anyone else:
 * see `directTarget`. Everything else (listings, deletes, copies, tags, presigned POSTs, and any
 * configuration this does not cover) goes through the SDK's client.
 */

/** The largest clock difference S3 tolerates is 15 minutes; correct ours well before that (as the SDK). */
const CLOCK_SKEW_CORRECTION_MS = 5 * 60 * 1000;
/** A DNS-compatible bucket without dots: the only kind addressed as `<bucket>.s3.<region>.amazonaws.com`. */
const VIRTUAL_HOSTABLE_BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

export interface S3Target {
  bucket: string;
  region: string;
  protocol: 'http:' | 'https:';
  hostname: string;
  port?: number;
  /** `/<bucket>` in path style, '' when the bucket is in the host name. */
  pathPrefix: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * Where and as whom requests go, when the SDK would decide the same without further configuration:
 * credentials given, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment with no
 * AWS_PROFILE (the first link of the SDK's default chain, and what Lambda sets for the function's role);
 * an explicit endpoint in path style, or Amazon S3's regional endpoint for a bucket without dots.
 * Undefined otherwise (a profile, SSO, container credentials, an endpoint from AWS_ENDPOINT_URL*, FIPS or
 * dual-stack endpoints): the store then sends everything through the SDK, which knows those.
 */
export function directTarget(cfg: S3StoreConfig, env: NodeJS.ProcessEnv = process.env): S3Target | undefined {
  const credentials =
    cfg.credentials ??
    (env.AWS_PROFILE === undefined && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          sessionToken: env.AWS_SESSION_TOKEN || undefined,
        }
      : undefined);
  if (!credentials || !cfg.region) return undefined;
  const pathStyle = cfg.forcePathStyle ?? cfg.endpoint !== undefined;
  if (cfg.endpoint !== undefined) {
    if (!pathStyle) return undefined;
    const url = new URL(cfg.endpoint);
    if (
      (url.protocol !== 'http:' && url.protocol !== 'https:') ||
      (url.pathname !== '/' && url.pathname !== '')
    )
      return undefined;
    return {
      bucket: cfg.bucket,
      region: cfg.region,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port === '' ? undefined : Number(url.port),
      pathPrefix: `/${cfg.bucket}`,
      credentials,
    };
  }
  const configured = [
    'AWS_ENDPOINT_URL',
    'AWS_ENDPOINT_URL_S3',
    'AWS_USE_FIPS_ENDPOINT',
    'AWS_USE_DUALSTACK_ENDPOINT',
  ];
  if (pathStyle || configured.some((name) => env[name]) || !VIRTUAL_HOSTABLE_BUCKET.test(cfg.bucket))
    return undefined;
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(cfg.region)) return undefined;
  return {
    bucket: cfg.bucket,
    region: cfg.region,
    protocol: 'https:',
    hostname: `${cfg.bucket}.s3.${cfg.region}.amazonaws.com`,
    pathPrefix: '',
    credentials,
  };
}

/** encodeURIComponent and the four characters it leaves that S3 wants escaped too (the SDK's rule). */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** What S3 answered: the status, the headers (lower-case names) and the whole body. */
export interface S3Answer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** An S3 failure in the SDK's shape: `name` is S3's code (NoSuchKey, PreconditionFailed, SlowDown...). */
export interface S3Failure extends Error {
  $metadata: { httpStatusCode: number; requestId?: string; clockSkewCorrected?: true };
}

/** S3's error document (`<Error><Code>NoSuchKey</Code><Message>...`), or the status when it has none. */
function failure(answer: S3Answer, clockSkewCorrected: boolean): S3Failure {
  const xml = answer.body.toString('utf8');
  const code = /<Code>([^<]{1,128})<\/Code>/.exec(xml)?.[1];
  const message = /<Message>([^<]{0,1024})<\/Message>/.exec(xml)?.[1];
  // A HEAD has no body: the SDK names its 404 NotFound, and any other status by its number.
  const name = code ?? (answer.statusCode === 404 ? 'NotFound' : String(answer.statusCode));
  const requestId = answer.headers['x-amz-request-id'];
  return Object.assign(new Error(message ?? name), {
    name,
    $metadata: {
      httpStatusCode: answer.statusCode,
      requestId: typeof requestId === 'string' ? requestId : undefined,
      clockSkewCorrected: clockSkewCorrected ? (true as const) : undefined,
    },
  });
}

/** The SDK's retry middleware's classification (getRetryErrorType), over its own predicates. */
function retryErrorType(err: Error): RetryErrorType {
  const error = err as SdkError;
  if (isThrottlingError(error)) return 'THROTTLING';
  if (isTransientError(error)) return 'TRANSIENT';
  if (isServerError(error)) return 'SERVER_ERROR';
  return 'CLIENT_ERROR';
}

export interface S3RequestOptions {
  /** Header names in lower case. */
  headers?: Record<string, string>;
  body?: Buffer;
}

export class S3Requests {
  private readonly signer: SignatureV4;
  private readonly http: Pick<NodeHttpHandler, 'handle'>;
  private readonly retries: StandardRetryStrategy;
  /** Added to the local clock when signing: corrected from S3's Date header, as the SDK does. */
  private clockOffsetMs = 0;

  constructor(
    private readonly target: S3Target,
    opts: {
      maxAttempts: number;
      /** What sends the signed request, or the options of the NodeHttpHandler that does (as the SDK's client takes either). */
      http: NodeHttpHandlerOptions | Pick<NodeHttpHandler, 'handle'>;
    },
  ) {
    this.signer = s3Signer(target.credentials, target.region);
    this.http = 'handle' in opts.http ? opts.http : new NodeHttpHandler(opts.http);
    this.retries = new StandardRetryStrategy(opts.maxAttempts);
  }

  private request(method: string, key: string, opts: S3RequestOptions, query?: Record<string, string>) {
    const { hostname, port } = this.target;
    return new HttpRequest({
      method,
      protocol: this.target.protocol,
      hostname,
      port,
      path: `${this.target.pathPrefix}/${key.split('/').map(encodeSegment).join('/')}`,
      query,
      headers: { host: port === undefined ? hostname : `${hostname}:${port}`, ...opts.headers },
      body: opts.body,
    });
  }

  /**
   * One call, retried as the SDK would (the same request each time, signed anew). A 2xx answer is
   * returned; any other throws an S3Failure once the retries are spent or the failure is not retryable.
   */
  async send(method: 'GET' | 'HEAD' | 'PUT', key: string, opts: S3RequestOptions = {}): Promise<S3Answer> {
    let token = await this.retries.acquireInitialRetryToken('s3');
    for (;;) {
      try {
        const answer = await this.attempt(method, key, opts);
        this.retries.recordSuccess(token);
        return answer;
      } catch (err) {
        // Not `instanceof Error`: Node's own errors come from another realm inside jest's sandbox, and
        // rewrapping them would lose the code (ECONNRESET...) the classification reads.
        const error = (typeof err === 'object' && err !== null ? err : new Error(String(err))) as Error;
        const info: RetryErrorInfo = { errorType: retryErrorType(error) };
        try {
          token = await this.retries.refreshRetryTokenForRetry(token, info);
        } catch {
          throw error;
        }
      }
    }
  }

  private async attempt(method: string, key: string, opts: S3RequestOptions): Promise<S3Answer> {
    // The operation in the query, as the SDK's serializer writes it (S3 ignores it; logs show it).
    const query = method === 'HEAD' ? undefined : { 'x-id': method === 'GET' ? 'GetObject' : 'PutObject' };
    const signed = await this.signer.sign(this.request(method, key, opts, query), {
      signingDate: new Date(Date.now() + this.clockOffsetMs),
    });
    const { response } = await this.http.handle(signed as HttpRequest);
    const bytes = response.body ? await streamCollector(response.body as Readable) : new Uint8Array();
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const answer: S3Answer = { statusCode: response.statusCode, headers: response.headers, body };
    if (answer.statusCode >= 200 && answer.statusCode < 300) return answer;
    throw failure(answer, this.correctClock(answer.headers.date));
  }

  /** True when S3's clock is far enough from ours that the offset changed (the retry is signed anew). */
  private correctClock(date: string | undefined): boolean {
    const server = date === undefined ? Number.NaN : Date.parse(date);
    if (Number.isNaN(server)) return false;
    const skew = server - (Date.now() + this.clockOffsetMs);
    if (Math.abs(skew) < CLOCK_SKEW_CORRECTION_MS) return false;
    this.clockOffsetMs = server - Date.now();
    return true;
  }

  /** A URL that GETs `key` without credentials for `expiresInSeconds` (query-string SigV4, as the SDK's presigner). */
  async presignGet(
    key: string,
    expiresInSeconds: number,
    query: Record<string, string> = {},
  ): Promise<string> {
    // As the SDK's presigner: the payload unsigned (whoever GETs has none), hoisted into the query.
    const headers = { 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' };
    const request = this.request('GET', key, { headers }, { ...query, 'x-id': 'GetObject' });
    const signed = await this.signer.presign(request, {
      expiresIn: expiresInSeconds,
      signingDate: new Date(Date.now() + this.clockOffsetMs),
    });
    const { hostname, port, protocol } = this.target;
    // In the order of their names, as the SDK's URL formatter writes them.
    const params = signed.query ?? {};
    const search = Object.keys(params)
      .sort()
      .map((name) => `${encodeSegment(name)}=${encodeSegment(String(params[name]))}`)
      .join('&');
    return `${protocol}//${hostname}${port === undefined ? '' : `:${port}`}${signed.path}?${search}`;
  }
}
