import { ErrorCode } from '../../src/errors';
import type { Caller } from '../../src/services/auth';
import { SCORING_STALL_MS, type ScoringJobRecord } from '../../src/services/scoring';
import { layout } from '../../src/storage/layout';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';

/**
 * ScoringService's reads and cancellation over a local S3, with jobs written as the workers leave them;
 * the dispatcher records what a read re-sends (test/e2e/scoring.test.ts runs real workers).
 */
describe('ScoringService', () => {
  let h: ResolverHarness;
  const scientist: Caller = { keyId: 'key-scientist', role: 'SCIENTIST', partnerId: 'key-scientist' };
  const longAgo = new Date(Date.now() - SCORING_STALL_MS - 60_000).toISOString();

  beforeAll(async () => (h = await startResolverHarness()));
  afterAll(() => h?.stop());

  const job = (id: string, fields: Partial<ScoringJobRecord>): ScoringJobRecord => ({
    id,
    status: 'RUNNING',
    source: { datasetId: null, prefix: 'imports/a/' },
    modelVersion: 'v0001',
    chunkSize: 10,
    concurrency: 2,
    totalImages: 40,
    chunkCount: 4,
    nextChunk: 3,
    handoffs: {},
    completedChunks: [0],
    scoredImages: 10,
    summary: null,
    error: null,
    cancelRequested: false,
    createdBy: scientist.keyId,
    createdAt: longAgo,
    updatedAt: longAgo,
    startedAt: longAgo,
    finishedAt: null,
    ...fields,
  });
  const store = (record: ScoringJobRecord) => h.services.docs.create(layout.scoringJob(record.id), record);
  const sent = (jobId: string) => h.dispatched.scoring.filter((e) => e.jobId === jobId);

  it('re-sends the unfinished chunks of a job that stopped moving, once for many readers', async () => {
    await store(job('sc-stalled', {}));
    const reads = await Promise.all(
      [0, 1, 2].map(() => h.services.scoring.getAndResumeIfStalled('sc-stalled')),
    );
    expect(reads.every((r) => r?.id === 'sc-stalled')).toBe(true);
    expect(sent('sc-stalled')).toEqual([
      { jobId: 'sc-stalled', chunk: 1 },
      { jobId: 'sc-stalled', chunk: 2 },
    ]);
    // Just resumed: the next read leaves it to the workers it started.
    await h.services.scoring.getAndResumeIfStalled('sc-stalled');
    expect(sent('sc-stalled')).toHaveLength(2);
  });

  it('re-plans a job whose plan never ran, and leaves moving or ended jobs alone', async () => {
    await store(
      job('sc-unplanned', { status: 'QUEUED', chunkCount: null, nextChunk: 0, completedChunks: [] }),
    );
    await h.services.scoring.getAndResumeIfStalled('sc-unplanned');
    expect(sent('sc-unplanned')).toEqual([{ jobId: 'sc-unplanned' }]);

    await store(job('sc-moving', { updatedAt: new Date().toISOString() }));
    await store(job('sc-done', { status: 'SUCCEEDED' }));
    // A chunk that checkpointed a moment ago is moving, whatever the job document's age.
    await store(job('sc-checkpointing', {}));
    await h.s3.store.put(layout.scoringChunk('sc-checkpointing', 1, 'partial.jsonl'), '{}\n');
    for (const id of ['sc-moving', 'sc-done', 'sc-checkpointing']) {
      expect((await h.services.scoring.getAndResumeIfStalled(id))?.id).toBe(id);
      expect(sent(id)).toEqual([]);
    }
    expect(await h.services.scoring.getAndResumeIfStalled('sc-none')).toBeNull();
  });

  it('cancels a running job once; an ended job is a CONFLICT', async () => {
    await store(job('sc-cancel', { updatedAt: new Date().toISOString() }));
    const cancelled = await h.services.scoring.cancel(scientist, 'sc-cancel');
    expect(cancelled).toMatchObject({ status: 'CANCELLED', cancelRequested: true });
    expect(cancelled.finishedAt).not.toBeNull();
    await expect(h.services.scoring.cancel(scientist, 'sc-cancel')).rejects.toMatchObject({
      code: ErrorCode.CONFLICT,
    });
  });
});
