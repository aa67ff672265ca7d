import { setTimeout as sleep } from 'timers/promises';
import { conflict, ErrorCode, LymphoscopeError } from '../errors';
import { ObjectStore, PreconditionFailed } from './object-store';

const DEFAULT_UPDATE_RETRIES = 10;

/**
 * JSON records in S3 with optimistic concurrency: the ETag read with a document is the version a
 * writer must present to replace it. This is what makes S3 usable as the registry's database: two
 * Lambdas promoting models, or a worker and a `cancelTraining` call writing one job, cannot silently
 * overwrite each other.
 *
 * Error messages never name the storage key: they reach clients, and keys are internal (services
 * re-word them in domain terms). Conditional writes are idempotent across the SDK's retries (the
 * ObjectStore recognises its own earlier write), so a lost answer is not mistaken for a conflict.
 */
export class JsonDocuments {
  constructor(private readonly store: ObjectStore) {}

  /** The document and its version, or null when it does not exist. */
  async get<T>(key: string): Promise<{ value: T; etag: string } | null> {
    const object = await this.store.get(key);
    if (!object) return null;
    let value: T;
    try {
      value = JSON.parse(object.body.toString('utf8')) as T;
    } catch (err) {
      // Only our own code writes these keys: a parse failure is corruption, not bad user input.
      throw new Error(`Document '${key}' is not valid JSON`, { cause: err });
    }
    return { value, etag: object.info.etag };
  }

  /** Creates the document; CONFLICT if it already exists. Returns its version. */
  async create<T>(key: string, value: T): Promise<string> {
    try {
      return (await this.store.put(key, serialise(value), { ...JSON_TYPE, ifNoneMatch: '*' })).etag;
    } catch (err) {
      if (err instanceof PreconditionFailed) throw conflict('The record already exists.');
      throw err;
    }
  }

  /** Replaces the document if it is still at `expectedEtag`; CONFLICT if it changed or was deleted. */
  async replace<T>(key: string, value: T, expectedEtag: string): Promise<string> {
    try {
      return (await this.store.put(key, serialise(value), { ...JSON_TYPE, ifMatch: expectedEtag })).etag;
    } catch (err) {
      if (err instanceof PreconditionFailed) {
        throw conflict('The record was changed by someone else; read it again and retry.');
      }
      throw err;
    }
  }

  /**
   * Read, mutate, compare-and-swap, until the swap wins. `mutate` may run several times, each time on
   * a fresh copy of the latest version, so it must be free of side effects; it may throw (for example
   * a CONFLICT when the record's state forbids the change) to stop the loop. NOT_FOUND if the document
   * does not exist; CONFLICT after `retries` lost races (default 10).
   */
  async update<T>(
    key: string,
    mutate: (current: T) => T,
    opts: { retries?: number } = {},
  ): Promise<{ value: T; etag: string }> {
    const retries = opts.retries ?? DEFAULT_UPDATE_RETRIES;
    for (let attempt = 0; ; attempt++) {
      const current = await this.get<T>(key);
      if (!current) throw new LymphoscopeError(ErrorCode.NOT_FOUND, 'The record was not found.');
      const value = mutate(current.value);
      try {
        const etag = (await this.store.put(key, serialise(value), { ...JSON_TYPE, ifMatch: current.etag }))
          .etag;
        return { value, etag };
      } catch (err) {
        if (!(err instanceof PreconditionFailed)) throw err;
        if (attempt >= retries) {
          throw conflict('Too many concurrent changes to the record; retry later.', {
            attempts: attempt + 1,
          });
        }
        // Jittered backoff so that writers that collided do not collide again in lockstep.
        await sleep(Math.random() * Math.min(200, 10 * 2 ** attempt));
      }
    }
  }

  /** Writes the document whatever its current version (for records with a single writer). */
  async put<T>(key: string, value: T): Promise<string> {
    return (await this.store.put(key, serialise(value), JSON_TYPE)).etag;
  }
}

const JSON_TYPE = { contentType: 'application/json' } as const;

function serialise(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('A document must be a JSON value');
  return text;
}
