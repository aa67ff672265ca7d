/**
 * Who is calling, apart from how a key is checked (auth.ts): the audit log records callers and auth
 * writes to the audit log, so the type lives below both.
 */
export type Role = 'PARTNER' | 'SCIENTIST' | 'ADMIN';

/** Who is calling. partnerId scopes predictions: every key is its own partner. */
export interface Caller {
  keyId: string;
  role: Role;
  partnerId: string;
}
