import { createHash } from 'node:crypto';
import { rateLimited } from '../errors';

export interface CallerLimitSettings {
  /** Requests of one caller being handled at once. */
  inFlight: number;
  /** Sustained requests per minute per API key, and how many may come at once from a full bucket. */
  keyRatePerMinute: number;
  keyBurst: number;
  /**
   * The same for callers without a key, per source address; also the budget of failed
   * authentications per address, so guessing keys from one address is throttled too.
   */
  anonymousRatePerMinute: number;
  anonymousBurst: number;
}

/** Who a request is charged to, known before the key is looked up. */
export interface RequestOrigin {
  apiKey: string | null;
  sourceIp: string;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
  inFlight: number;
}

/** Above this many tracked callers, idle ones (full bucket, nothing in flight) are forgotten. */
const MAX_TRACKED = 10_000;

/**
 * Per-caller limits for one process (one Lambda instance): requests in flight and a token bucket per API
 * key, or per source address for requests without a key. A burst from one caller is refused with
 * RATE_LIMITED in microseconds instead of queueing in front of everyone else. The key is charged by a
 * hash of its secret, before the key is looked up, so a refusal costs no storage read; a key that turns
 * out unknown is charged to its address as well (`authenticationFailed`), so random keys do not buy a
 * fresh bucket each.
 *
 * In memory, per instance: N warm Lambda instances allow N times these rates. The account-level bound
 * is the function's reserved concurrency (`reservedConcurrency` in serverless.yml); see docs/SECURITY.md.
 */
export class CallerLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly settings: CallerLimitSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Admits one request or throws RATE_LIMITED. Returns the function that ends it (call it exactly once,
   * in a `finally`).
   */
  admit(origin: RequestOrigin): () => void {
    const failures = this.peek(failuresOf(origin.sourceIp));
    if (origin.apiKey && failures && this.refill(failures, 'anonymous') < 1) {
      throw this.refusal('anonymous', failures, 'from this address after failed authentications');
    }
    const id = origin.apiKey ? keyOf(origin.apiKey) : addressOf(origin.sourceIp);
    const kind = origin.apiKey ? 'key' : 'anonymous';
    const bucket = this.bucket(id, kind);
    if (bucket.inFlight >= this.settings.inFlight) {
      const n = this.settings.inFlight;
      throw rateLimited(
        `${kind === 'key' ? 'This API key' : 'This address'} already has ${n} ${n === 1 ? 'request' : 'requests'} in progress, the most allowed at once; retry when one has finished.`,
        { limit: this.settings.inFlight, limitName: 'LYMPHOSCOPE_MAX_IN_FLIGHT', retryAfterSeconds: 1 },
      );
    }
    if (this.refill(bucket, kind) < 1) {
      throw this.refusal(kind, bucket, kind === 'key' ? 'with this API key' : 'from this address');
    }
    bucket.tokens -= 1;
    bucket.inFlight += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      bucket.inFlight -= 1;
    };
  }

  /** Charges a failed authentication (a key that is unknown, malformed or revoked) to its address. */
  authenticationFailed(sourceIp: string): void {
    const bucket = this.bucket(failuresOf(sourceIp), 'anonymous');
    this.refill(bucket, 'anonymous');
    bucket.tokens = Math.max(0, bucket.tokens - 1);
  }

  private rate(kind: 'key' | 'anonymous'): { perMs: number; burst: number; perMinute: number } {
    const perMinute = kind === 'key' ? this.settings.keyRatePerMinute : this.settings.anonymousRatePerMinute;
    const burst = kind === 'key' ? this.settings.keyBurst : this.settings.anonymousBurst;
    return { perMs: perMinute / 60_000, burst, perMinute };
  }

  private refill(bucket: Bucket, kind: 'key' | 'anonymous'): number {
    const { perMs, burst } = this.rate(kind);
    const now = this.now();
    bucket.tokens = Math.min(burst, bucket.tokens + Math.max(0, now - bucket.updatedMs) * perMs);
    bucket.updatedMs = now;
    return bucket.tokens;
  }

  private refusal(kind: 'key' | 'anonymous', bucket: Bucket, who: string) {
    const { perMs, burst, perMinute } = this.rate(kind);
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
    return rateLimited(
      `Too many requests ${who}: the limit is ${perMinute} per minute, in bursts of up to ${burst}. Retry in ${retryAfterSeconds} s.`,
      {
        limit: perMinute,
        limitName:
          kind === 'key' ? 'LYMPHOSCOPE_KEY_RATE_PER_MINUTE' : 'LYMPHOSCOPE_ANONYMOUS_RATE_PER_MINUTE',
        retryAfterSeconds,
      },
    );
  }

  private peek(id: string): Bucket | undefined {
    return this.buckets.get(id);
  }

  private bucket(id: string, kind: 'key' | 'anonymous'): Bucket {
    let bucket = this.buckets.get(id);
    if (!bucket) {
      if (this.buckets.size >= MAX_TRACKED) this.forgetIdle();
      bucket = { tokens: this.rate(kind).burst, updatedMs: this.now(), inFlight: 0 };
      this.buckets.set(id, bucket);
    }
    return bucket;
  }

  /**
   * Drops callers that would start afresh anyway (a full bucket, nothing in flight); if that is not
   * enough (a flood from many addresses), the oldest tenth, so memory stays bounded whatever arrives.
   */
  private forgetIdle(): void {
    for (const [id, bucket] of this.buckets) {
      const kind = id.startsWith('key:') ? 'key' : 'anonymous';
      if (bucket.inFlight === 0 && this.refill(bucket, kind) >= this.rate(kind).burst)
        this.buckets.delete(id);
    }
    if (this.buckets.size < MAX_TRACKED * 0.9) return;
    let drop = this.buckets.size - Math.floor(MAX_TRACKED * 0.9);
    for (const id of this.buckets.keys()) {
      if (drop-- <= 0) break;
      this.buckets.delete(id);
    }
  }

  /** How many callers are tracked (for tests of the memory bound). */
  get tracked(): number {
    return this.buckets.size;
  }
}

const keyOf = (secret: string) => `key:${createHash('sha256').update(secret, 'utf8').digest('hex')}`;
const addressOf = (ip: string) => `ip:${ip}`;
const failuresOf = (ip: string) => `fail:${ip}`;
