import { ErrorCode } from '../../src/errors';
import { JsonDocuments } from '../../src/storage/json-documents';
import { layout } from '../../src/storage/layout';
import type { TestS3 } from '../helpers/s3';
import { handlerEnvironment, lambdaContext } from '../helpers/handler-env';

/**
 * The training worker's Lambda entry point, configured from the environment like on Lambda. Jobs are
 * written as the training service writes them; none here gets as far as training (test/e2e does).
 */
describe('train-worker handler', () => {
  let s3: TestS3;
  let docs: JsonDocuments;
  let handler: typeof import('../../src/handlers/train-worker').handler;

  beforeAll(async () => {
    s3 = await handlerEnvironment();
    docs = new JsonDocuments(s3.store);
    ({ handler } = await import('../../src/handlers/train-worker'));
  });
  afterAll(() => s3?.stop());

  const job = (id: string, fields: Record<string, unknown>) => ({
    id,
    status: 'QUEUED',
    datasetId: 'ds-x',
    snapshotId: id,
    epoch: 0,
    attempts: 0,
    cancelRequested: false,
    lease: null,
    ...fields,
  });

  it('refuses an event without a jobId', async () => {
    for (const event of [null, {}, { jobId: 7 }]) {
      await expect(handler(event as never, lambdaContext('req-1'))).rejects.toMatchObject({
        code: ErrorCode.BAD_USER_INPUT,
        message: 'The worker event needs a jobId.',
      });
    }
  });

  it('skips a job that already ended, leaving its record as it was', async () => {
    await docs.create(layout.job('job-done'), job('job-done', { status: 'SUCCEEDED' }));
    const before = (await docs.get(layout.job('job-done')))!.etag;
    expect(await handler({ jobId: 'job-done' }, lambdaContext('req-2'))).toEqual({
      jobId: 'job-done',
      unit: null,
      outcome: 'skipped',
    });
    // A unit's event names its unit; a bad one is refused before any record is read.
    await expect(handler({ jobId: 'job-done', unit: -1 }, lambdaContext('req-2b'))).rejects.toMatchObject({
      code: ErrorCode.BAD_USER_INPUT,
    });
    expect((await docs.get(layout.job('job-done')))!.etag).toBe(before);
  });

  it("skips a job whose live lease is another invocation's, and takes back its own after a crash", async () => {
    const lease = { owner: 'req-first', expiresAt: new Date(Date.now() + 60_000).toISOString() };
    await docs.create(
      layout.job('job-leased'),
      job('job-leased', { status: 'RUNNING', lease, cancelRequested: true }),
    );
    expect((await handler({ jobId: 'job-leased' }, lambdaContext('req-other'))).outcome).toBe('skipped');
    // The same request id (Lambda's retry of the event) takes the lease; cancellation was asked, so it ends.
    expect((await handler({ jobId: 'job-leased' }, lambdaContext('req-first'))).outcome).toBe('cancelled');
    const after = (await docs.get<{ status: string; lease: unknown }>(layout.job('job-leased')))!.value;
    expect(after).toMatchObject({ status: 'CANCELLED', lease: null });
  });
});
