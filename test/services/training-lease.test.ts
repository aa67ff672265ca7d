import type { TrainWorkerEvent } from '../../src/dispatch/job-dispatcher';
import { domainApi } from '../../src/ml/decisions';
import { createLogger } from '../../src/observability/log';
import type { JobRecord } from '../../src/services/training';
import { JOB_LEASE, JobLease, LeaseLost } from '../../src/services/training-lease';
import { UnitRun } from '../../src/services/training-run';
import { unitLease } from '../../src/services/training-units';
import { JsonDocuments } from '../../src/storage/json-documents';
import { layout } from '../../src/storage/layout';
import { waitFor } from '../helpers/graphql';
import { queuedJobRecord } from '../helpers/job-record';
import { startTestS3, type TestS3 } from '../helpers/s3';

/**
 * The lease both training workers hold in job.json, over the real local S3 server: who may write, what a
 * heartbeat and a hand-on leave behind, and the checks a run makes between batches and epochs.
 */
describe('the training lease', () => {
  let s3: TestS3;
  let docs: JsonDocuments;
  const log = createLogger('silent');

  beforeAll(async () => {
    s3 = await startTestS3();
    docs = new JsonDocuments(s3.store);
  });
  afterAll(() => s3?.stop());

  async function queuedJob(id: string, patch: Partial<JobRecord> = {}): Promise<string> {
    await docs.create(layout.job(id), queuedJobRecord(id, patch));
    return layout.job(id);
  }
  const read = async (key: string) => (await docs.get<JobRecord>(key))!.value;
  /** Takes the job's lease the way the whole-job worker does, unless another invocation's is live. */
  const take = (lease: JobLease) =>
    lease.acquire((job) =>
      lease.heldElsewhere(job.lease)
        ? { job, verdict: 'held' as const }
        : { job: { ...job, status: 'RUNNING' as const, lease: lease.fresh() }, verdict: 'taken' as const },
    );

  it('lets only the holder write; another invocation is kept out until the lease lapses', async () => {
    const key = await queuedJob('job-holder');
    const first = new JobLease(docs, key, 'inv-1', 60_000, JOB_LEASE);
    const second = new JobLease(docs, key, 'inv-2', 60_000, JOB_LEASE);
    expect(await take(first)).toBe('taken');
    expect(await take(second)).toBe('held');
    expect((await read(key)).lease!.owner).toBe('inv-1');

    await first.write((j) => ({ ...j, epoch: 3 }));
    expect(first.job.epoch).toBe(3);
    await expect(second.write((j) => ({ ...j, epoch: 99 }))).rejects.toEqual(new LeaseLost('inv-1'));
    await expect(second.read()).rejects.toBeInstanceOf(LeaseLost);
    expect((await read(key)).epoch).toBe(3);

    // The first one's lease lapses (its worker died): the second takes over, and the first stops at its
    // next write or check.
    await docs.update<JobRecord>(key, (j) => ({
      ...j,
      lease: { owner: 'inv-1', expiresAt: new Date(Date.now() - 1000).toISOString() },
    }));
    expect(await take(second)).toBe('taken');
    await expect(first.write((j) => ({ ...j, epoch: 4 }))).rejects.toEqual(new LeaseLost('inv-2'));
    await expect(first.read()).rejects.toEqual(new LeaseLost('inv-2'));
  });

  it('renews the lease on a heartbeat until stopped, and hands the job on with the lease released', async () => {
    const key = await queuedJob('job-heartbeat');
    const lease = new JobLease(docs, key, 'inv-hb', 900, JOB_LEASE);
    await take(lease);
    const taken = Date.parse((await read(key)).lease!.expiresAt);
    lease.startHeartbeat(log);
    try {
      await waitFor(
        'a renewed lease',
        async () => Date.parse((await read(key)).lease!.expiresAt) > taken,
        10_000,
      );
    } finally {
      lease.stopHeartbeat();
    }
    const sent: TrainWorkerEvent[] = [];
    await lease.handOn({ dispatch: async (event) => void sent.push(event) }, { jobId: 'job-heartbeat' });
    expect((await read(key)).lease).toBeNull();
    expect(sent).toEqual([{ jobId: 'job-heartbeat' }]);
    // Released, the lease is nobody's: this invocation may not write any more either.
    await expect(lease.write((j) => j)).rejects.toEqual(new LeaseLost(null));
  });

  it("keeps a unit's lease in its entry of job.units", async () => {
    const unit = {
      kind: 'FOLD' as const,
      seed: 1,
      fold: 0,
      state: 'PENDING' as const,
      epoch: 0,
      epochs: 2,
      attempts: 0,
      error: null,
      dispatched: true,
      handoff: null,
      lease: null,
    };
    const key = await queuedJob('job-units', { units: [unit, { ...unit, fold: 1 }] });
    const zero = new JobLease(docs, key, 'inv-0', 60_000, unitLease(0));
    const one = new JobLease(docs, key, 'inv-1', 60_000, unitLease(1));
    await zero.acquire((job) => ({ job: unitLease(0).set(job, zero.fresh()), verdict: null }));
    await zero.writeRenewing((j) => ({ ...j, epoch: 2 }));
    await expect(one.write((j) => j)).rejects.toEqual(new LeaseLost(null));
    const job = await read(key);
    expect(job.units!.map((u) => u.lease?.owner ?? null)).toEqual(['inv-0', null]);
    expect(job.lease).toBeNull();
    expect(job.epoch).toBe(2);
  });

  it('a run sees a cancel request between batches, and pauses when an epoch may not fit the time left', async () => {
    const key = await queuedJob('job-run');
    const lease = new JobLease(docs, key, 'inv-run', 60_000, JOB_LEASE);
    await take(lease);
    let remainingMs = 200_000;
    const run = new UnitRun({
      store: s3.store,
      docs,
      log,
      lease,
      data: {
        train: [],
        validation: [],
        test: [],
        sha256: new Map(),
        domain: domainApi(),
        norms: null,
        rejected: [],
      },
      remainingMs: () => remainingMs,
      safetyMs: 50_000,
      stopWhen: (job) => job?.cancelRequested ?? false,
    });
    expect(await run.shouldCancel()).toBe(false);
    expect(run.shouldPause()).toBe(false);
    remainingMs = 40_000;
    expect(run.shouldPause()).toBe(true);

    await docs.update<JobRecord>(key, (j) => ({ ...j, cancelRequested: true }));
    // job.json is read at most every 3 s; the request is seen at the next read, and stays seen.
    await waitFor('the cancel request seen', () => run.shouldCancel(), 10_000, 250);
    await docs.update<JobRecord>(key, (j) => ({ ...j, cancelRequested: false }));
    expect(await run.shouldCancel()).toBe(true);
  });
});
