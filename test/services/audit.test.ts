import { AuditLog, type AuditRecord } from '../../src/services/audit';
import type { Caller } from '../../src/services/auth';
import { JsonDocuments } from '../../src/storage/json-documents';
import { startTestS3, type TestS3 } from '../helpers/s3';

/** The audit trail against a real local S3: one object per event, audit-first around actions. */
describe('AuditLog', () => {
  let s3: TestS3;
  let audit: AuditLog;
  const admin: Caller = { keyId: 'key-admin', role: 'ADMIN', partnerId: 'key-admin' };
  const today = () => new Date().toISOString().slice(0, 10);
  const all = async () => (await audit.list(today(), 100)).items.map((i) => i.node);

  beforeEach(async () => {
    s3 = await startTestS3();
    audit = new AuditLog(s3.store, new JsonDocuments(s3.store));
  });
  afterEach(() => s3?.stop());

  it('records who did what to which target, before and after, under the day it happened', async () => {
    const record = await audit.record(
      admin,
      'model.promote',
      'v0002',
      { version: 'v0001' },
      { version: 'v0002' },
    );
    expect(record).toMatchObject({ actor: 'key-admin (admin)', action: 'model.promote', target: 'v0002' });
    expect(await s3.listKeys()).toEqual([
      expect.stringMatching(new RegExp(`^audit/${today().replace(/-/g, '/')}/`)),
    ]);
    expect(await all()).toEqual([record]);
  });

  it('writes the record pending before the action, with the id the action may store, then marks it applied', async () => {
    let seenDuringAction: AuditRecord[] = [];
    let idGiven = '';
    const result = await audit.audited(
      admin,
      { action: 'apiKey.create', target: 'key-1', before: null, after: { role: 'ADMIN' } },
      async (auditId) => {
        idGiven = auditId;
        seenDuringAction = await all();
        return 'done';
      },
    );
    expect(result).toBe('done');
    expect(seenDuringAction).toEqual([expect.objectContaining({ id: idGiven, outcome: 'pending' })]);
    expect(await all()).toEqual([
      expect.objectContaining({ id: idGiven, outcome: 'applied', after: { role: 'ADMIN' } }),
    ]);
  });

  it('leaves no record when the action is refused, and rethrows its error', async () => {
    const refusal = new Error('stale expectation');
    await expect(
      audit.audited(admin, { action: 'model.promote', target: 'v9', before: null, after: null }, async () => {
        throw refusal;
      }),
    ).rejects.toBe(refusal);
    expect(await s3.listKeys()).toEqual([]);
  });

  it('pages a busy day without losing or repeating a record', async () => {
    for (let i = 0; i < 5; i++) await audit.record(admin, 'image.remove', `ds-1/img-${i}`, null, null);
    const first = await audit.list(today(), 3);
    expect(first.hasNextPage).toBe(true);
    const rest = await audit.list(today(), 3, Buffer.from(first.endCursor!, 'base64url').toString('utf8'));
    const targets = [...first.items, ...rest.items].map((i) => i.node.target);
    // Records of one millisecond may list in either order (their ids share the time part).
    expect(targets.sort()).toEqual([0, 1, 2, 3, 4].map((i) => `ds-1/img-${i}`));
  });
});
