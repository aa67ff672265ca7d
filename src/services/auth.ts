import { createHash, randomBytes } from 'node:crypto';
import { ulid } from 'ulid';
import { badInput, ErrorCode, LymphoscopeError, notFound } from '../errors';
import { layout } from '../storage/layout';
import type { JsonDocuments } from '../storage/json-documents';
import type { ObjectStore } from '../storage/object-store';
import type { AuditLog } from './audit';

import type { Caller, Role } from './caller';

export type { Caller, Role };

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: Role;
  /** SHA-256 of the secret; the secret itself is never stored. */
  hash: string;
  createdAt: string;
  createdBy: string;
  revokedAt: string | null;
}

/** Used only where authentication is switched off (tests of resolvers without keys). */
export const ANONYMOUS_ADMIN: Caller = Object.freeze({
  keyId: 'anonymous',
  role: 'ADMIN',
  partnerId: 'anonymous',
});

const RANK: Record<Role, number> = { PARTNER: 1, SCIENTIST: 2, ADMIN: 3 };

export function requireRole(caller: Caller, role: Role): void {
  if (RANK[caller.role] < RANK[role]) {
    throw new LymphoscopeError(
      ErrorCode.FORBIDDEN,
      `This needs the ${role.toLowerCase()} role; your key is ${caller.role.toLowerCase()}.`,
    );
  }
}

const hashSecret = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');
const SECRET = /^lsk_[A-Za-z0-9_-]{20,100}$/;

/**
 * API keys stored as SHA-256 hashes: a lookup is one GET of keys/by-hash/<hash>.json. There is no cache,
 * so a revocation takes effect on the very next request. Secrets are 256 random bits, so a plain hash
 * (no salt, no slow KDF) is enough: nobody can brute-force the preimage.
 */
export class AuthService {
  constructor(
    private readonly store: ObjectStore,
    private readonly docs: JsonDocuments,
    private readonly audit: AuditLog,
  ) {}

  async authenticate(secret: string | null): Promise<Caller> {
    if (!secret) {
      throw new LymphoscopeError(
        ErrorCode.UNAUTHENTICATED,
        'Send an API key as `x-api-key` or `Authorization: Bearer <key>`.',
      );
    }
    const record = SECRET.test(secret)
      ? (await this.docs.get<ApiKeyRecord>(layout.apiKeyByHash(hashSecret(secret))))?.value
      : null;
    if (!record || record.revokedAt) {
      throw new LymphoscopeError(ErrorCode.UNAUTHENTICATED, 'The API key is unknown or revoked.');
    }
    return { keyId: record.id, role: record.role, partnerId: record.id };
  }

  async create(
    actor: Caller,
    name: string,
    role: Role,
    secret?: string,
  ): Promise<{ record: ApiKeyRecord; secret: string }> {
    if (name.trim().length < 1 || name.length > 100)
      throw badInput('name must be 1-100 characters.', { field: 'name' });
    const value = secret ?? `lsk_${randomBytes(32).toString('base64url')}`;
    if (!SECRET.test(value))
      throw badInput('A key must look like lsk_ followed by 20-100 base64url characters.');
    const record: ApiKeyRecord = {
      id: `key-${ulid().toLowerCase()}`,
      name: name.trim(),
      role,
      hash: hashSecret(value),
      createdAt: new Date().toISOString(),
      createdBy: actor.keyId,
      revokedAt: null,
    };
    // Audited with the change. The two records are created once each, idempotently across retries of
    // a lost answer (ObjectStore.put); if the second cannot be written, the first is removed, so no key
    // works that is not listed.
    const entry = {
      action: 'apiKey.create',
      target: record.id,
      before: null,
      after: { name: record.name, role },
    };
    await this.audit.audited(actor, entry, async () => {
      await this.docs.create(layout.apiKeyByHash(record.hash), record);
      try {
        await this.docs.create(layout.apiKeyById(record.id), { hash: record.hash });
      } catch (error) {
        await this.store.delete(layout.apiKeyByHash(record.hash)).catch(() => undefined);
        throw error;
      }
    });
    return { record, secret: value };
  }

  /** Makes sure a key with this secret exists (the local default's admin key); idempotent. */
  async ensure(name: string, role: Role, secret: string): Promise<ApiKeyRecord> {
    const existing = await this.docs.get<ApiKeyRecord>(layout.apiKeyByHash(hashSecret(secret)));
    if (existing) return existing.value;
    return (
      await this.create({ keyId: 'bootstrap', role: 'ADMIN', partnerId: 'bootstrap' }, name, role, secret)
    ).record;
  }

  async list(): Promise<ApiKeyRecord[]> {
    const refs = await this.store.listAll(layout.apiKeysPrefix(), { limit: 10_000 });
    const hashes = await Promise.all(
      refs.map(async (r) => (await this.docs.get<{ hash: string }>(r.key))?.value.hash),
    );
    const records = await Promise.all(
      hashes
        .filter((h): h is string => !!h)
        .map(async (h) => (await this.docs.get<ApiKeyRecord>(layout.apiKeyByHash(h)))?.value),
    );
    return records.filter((r): r is ApiKeyRecord => !!r).sort((a, b) => a.id.localeCompare(b.id));
  }

  async revoke(actor: Caller, keyId: string): Promise<ApiKeyRecord> {
    const ref = await this.docs.get<{ hash: string }>(layout.apiKeyById(keyId));
    if (!ref) throw notFound('API key', keyId);
    const before = await this.docs.get<ApiKeyRecord>(layout.apiKeyByHash(ref.value.hash));
    if (!before) throw notFound('API key', keyId);
    const { value } = await this.docs.update<ApiKeyRecord>(layout.apiKeyByHash(ref.value.hash), (k) => ({
      ...k,
      revokedAt: k.revokedAt ?? new Date().toISOString(),
    }));
    await this.audit.record(
      actor,
      'apiKey.revoke',
      keyId,
      { revokedAt: before.value.revokedAt },
      { revokedAt: value.revokedAt },
    );
    return value;
  }
}
