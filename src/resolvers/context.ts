import type { Logger } from '../observability/log';
import { ANONYMOUS_ADMIN, requireRole, type Caller, type Role } from '../services/auth';
import type { Services } from '../services';

/** Per request: the services, who is calling (resolved lazily, so `health` needs no key) and a logger. */
export interface RequestContext {
  services: Services;
  requestId: string;
  log: Logger;
  /** Authenticates once per request and checks the role; throws UNAUTHENTICATED / FORBIDDEN. */
  require(role: Role): Promise<Caller>;
  /**
   * Runs `load` once per key for this request: fields of one object that need the same read (a dataset's
   * counts all come from one listing) share it. Nothing outlives the request.
   */
  once<T>(key: string, load: () => Promise<T>): Promise<T>;
}

export function createRequestContext(
  services: Services,
  apiKey: string | null,
  requestId: string,
  /** Told when the key sent is unknown, malformed or revoked (the rate limiter charges the address). */
  onAuthenticationFailed?: () => void,
): RequestContext {
  let caller: Promise<Caller> | null = null;
  const log = services.log.child({ requestId });
  const loaded = new Map<string, Promise<unknown>>();
  return {
    services,
    requestId,
    log,
    async require(role) {
      caller ??= services.config.authRequired
        ? services.auth.authenticate(apiKey).catch((error: unknown) => {
            if (apiKey) onAuthenticationFailed?.();
            throw error;
          })
        : Promise.resolve(ANONYMOUS_ADMIN);
      const who = await caller;
      requireRole(who, role);
      return who;
    },
    once<T>(key: string, load: () => Promise<T>): Promise<T> {
      let value = loaded.get(key) as Promise<T> | undefined;
      if (!value) {
        value = load();
        loaded.set(key, value);
      }
      return value;
    },
  };
}

/** The key from `x-api-key` or `Authorization: Bearer <key>` (header names case-insensitive). */
export function apiKeyFromHeaders(headers: Record<string, string | undefined>): string | null {
  let key: string | null = null;
  for (const [name, value] of Object.entries(headers)) {
    if (!value) continue;
    const lower = name.toLowerCase();
    if (lower === 'x-api-key') key = value.trim();
    else if (lower === 'authorization' && /^bearer\s+/i.test(value))
      key = value.replace(/^bearer\s+/i, '').trim();
  }
  return key;
}
