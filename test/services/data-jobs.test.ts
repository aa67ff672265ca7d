import { createLogger } from '../../src/observability/log';
import { AuditLog } from '../../src/services/audit';
import type { Caller } from '../../src/services/auth';
import { DataJobRunner } from '../../src/services/data-jobs';
import { JsonDocuments } from '../../src/storage/json-documents';
import { startTestS3, type TestS3 } from '../helpers/s3';

/** Resumable deletion jobs against a local S3: each step removes every version the store lists. */
describe('DataJobRunner', () => {
  let s3: TestS3;
  let docs: JsonDocuments;
  const admin: Caller = { keyId: 'key-admin', role: 'ADMIN', partnerId: 'key-admin' };
  const runner = (budgetMs: number) =>
    new DataJobRunner(s3.store, docs, new AuditLog(s3.store, docs), createLogger('silent'), budgetMs);

  beforeAll(async () => {
    s3 = await startTestS3();
    docs = new JsonDocuments(s3.store);
  });
  afterAll(() => s3?.stop());

  const versionsUnder = async (prefix: string) =>
    (await s3.store.listVersions(prefix, { limit: 1000 })).length;
  const job = (id: string) => ({ id, kind: 'DELETE_DATASET' as const, target: id, partnerId: 'p', kept: [] });

  it('removes every version under a prefix but the keys it keeps', async () => {
    await s3.store.put('datasets/ds-a/images/all/_/1.bmp', 'one');
    await s3.store.put('datasets/ds-a/images/all/_/1.bmp', 'one, rewritten');
    await s3.store.put('datasets/ds-a/snapshots/pinned.json', '{}');
    const done = await runner(60_000).start(admin, job('delete-dataset-ds-a'), [
      { op: 'purge', prefix: 'datasets/ds-a/', keep: ['datasets/ds-a/snapshots/pinned.json'] },
    ]);
    expect(done).toMatchObject({
      status: 'SUCCEEDED',
      remaining: [],
      runs: 1,
      objectsDeleted: 1,
    });
    expect(done.versionsDeleted).toBeGreaterThanOrEqual(1);
    expect(await s3.listKeys()).toEqual(expect.arrayContaining(['datasets/ds-a/snapshots/pinned.json']));
    expect(await versionsUnder('datasets/ds-a/images/')).toBe(0);
  });

  it('stops when its budget is spent with the rest of its plan kept, and the next run finishes it', async () => {
    for (const ds of ['b1', 'b2', 'b3']) await s3.store.put(`datasets/ds-${ds}/dataset.json`, '{}');
    const plan = ['b1', 'b2', 'b3'].map((ds) => ({ op: 'purge' as const, prefix: `datasets/ds-${ds}/` }));
    const first = await runner(1).start(admin, job('delete-dataset-b'), plan);
    expect(first.status).toBe('RUNNING');
    expect(first.remaining.length).toBeGreaterThan(0);
    expect(first.remaining.length).toBeLessThan(3);
    expect(first.lease).toBeNull();
    let current = first;
    for (let i = 0; i < 5 && current.status === 'RUNNING'; i++)
      current = await runner(1).run(admin, current.id);
    expect(current).toMatchObject({ status: 'SUCCEEDED', remaining: [], objectsDeleted: 3 });
    expect(await versionsUnder('datasets/ds-b')).toBe(0);
  });

  it('runs a finished job again when asked again, finding what appeared since', async () => {
    await s3.store.put('datasets/ds-c/dataset.json', '{}');
    const plan = [{ op: 'purge' as const, prefix: 'datasets/ds-c/' }];
    expect((await runner(60_000).start(admin, job('delete-dataset-c'), plan)).objectsDeleted).toBe(1);
    await s3.store.put('datasets/ds-c/images/all/_/late.bmp', 'late');
    const again = await runner(60_000).start(admin, job('delete-dataset-c'), plan);
    expect(again).toMatchObject({ status: 'SUCCEEDED', runs: 2, objectsDeleted: 2 });
    expect(await versionsUnder('datasets/ds-c/')).toBe(0);
  });
});
