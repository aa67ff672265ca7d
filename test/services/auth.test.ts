import { ErrorCode } from '../../src/errors';
import { AuditLog } from '../../src/services/audit';
import { AuthService, type Caller } from '../../src/services/auth';
import { JsonDocuments } from '../../src/storage/json-documents';
import { startTestS3, type TestS3 } from '../helpers/s3';

/** API keys against a real local S3: stored hashed, authenticated by hash, revoked for good, audited. */
describe('AuthService', () => {
  let s3: TestS3;
  let auth: AuthService;
  let audit: AuditLog;
  const admin: Caller = { keyId: 'key-admin', role: 'ADMIN', partnerId: 'key-admin' };

  beforeAll(async () => {
    s3 = await startTestS3();
    const docs = new JsonDocuments(s3.store);
    audit = new AuditLog(s3.store, docs);
    auth = new AuthService(s3.store, docs, audit);
  });
  afterAll(() => s3?.stop());

  const unauthenticated = expect.objectContaining({ code: ErrorCode.UNAUTHENTICATED });

  it('authenticates a new key as its own partner with its role, and stores only its hash', async () => {
    const { record, secret } = await auth.create(admin, '  lab system  ', 'PARTNER');
    expect(record).toMatchObject({
      name: 'lab system',
      role: 'PARTNER',
      createdBy: admin.keyId,
      revokedAt: null,
    });
    expect(await auth.authenticate(secret)).toEqual({
      keyId: record.id,
      role: 'PARTNER',
      partnerId: record.id,
    });
    // The secret appears nowhere in storage: not in a key, not in any object's bytes.
    for (const key of await s3.listKeys()) {
      expect(key).not.toContain(secret);
      expect((await s3.store.get(key))!.body.toString('utf8')).not.toContain(secret);
    }
    expect((await auth.list()).map((k) => k.id)).toContain(record.id);
  });

  it('refuses no key, a malformed key and an unknown key alike', async () => {
    await expect(auth.authenticate(null)).rejects.toEqual(unauthenticated);
    await expect(auth.authenticate('')).rejects.toEqual(unauthenticated);
    await expect(auth.authenticate('not-a-key')).rejects.toEqual(unauthenticated);
    await expect(auth.authenticate(`lsk_${'A'.repeat(43)}`)).rejects.toEqual(unauthenticated);
  });

  it('revokes a key for good, idempotently, with an audit record of each change', async () => {
    const { record, secret } = await auth.create(admin, 'to revoke', 'SCIENTIST');
    const revoked = await auth.revoke(admin, record.id);
    expect(revoked.revokedAt).not.toBeNull();
    await expect(auth.authenticate(secret)).rejects.toEqual(unauthenticated);
    expect((await auth.revoke(admin, record.id)).revokedAt).toBe(revoked.revokedAt);
    await expect(auth.revoke(admin, 'key-unknown')).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });

    const today = new Date().toISOString().slice(0, 10);
    const records = (await audit.list(today, 100)).items.map((i) => i.node);
    const about = records.filter((r) => r.target === record.id).map((r) => r.action);
    expect(about).toEqual(expect.arrayContaining(['apiKey.create', 'apiKey.revoke']));
  });

  it('refuses a name out of bounds or a secret of the wrong shape, creating nothing', async () => {
    const before = await s3.listKeys();
    await expect(auth.create(admin, ' ', 'ADMIN')).rejects.toMatchObject({ details: { field: 'name' } });
    await expect(auth.create(admin, 'x'.repeat(101), 'ADMIN')).rejects.toMatchObject({
      code: ErrorCode.BAD_USER_INPUT,
    });
    await expect(auth.create(admin, 'chosen', 'ADMIN', 'password123')).rejects.toMatchObject({
      code: ErrorCode.BAD_USER_INPUT,
    });
    expect(await s3.listKeys()).toEqual(before);
    // ensure() makes a chosen well-formed secret work once, and is a no-op after.
    const secret = `lsk_${'b'.repeat(40)}`;
    const first = await auth.ensure('bootstrap admin', 'ADMIN', secret);
    expect(await auth.ensure('bootstrap admin', 'ADMIN', secret)).toEqual(first);
    expect((await auth.authenticate(secret)).role).toBe('ADMIN');
  });
});
