import { loadConfig } from '../../src/config';
import type { JobDispatcher, TrainWorkerEvent } from '../../src/dispatch/job-dispatcher';
import { createServices, type Services } from '../../src/services';
import type { JobRecord } from '../../src/services/training';
import { runTrainingInvocation } from '../../src/services/training-units';
import type { WorkerDeps } from '../../src/services/training-worker';
import { layout } from '../../src/storage/layout';
import { queuedJobRecord } from '../helpers/job-record';
import { startTestS3, type TestS3 } from '../helpers/s3';
import { modelArtifacts } from '../../src/services/model-artifacts';

/**
 * The fan-out's bookkeeping over the real local S3 server, where races and repeats decide: which units
 * the start event hands out, what a repeated start re-sends, a cancel seen by a unit before it trains, a
 * stalled job restarted by a read. No unit trains here (test/e2e/training-folds.test.ts runs the real
 * thing); the dispatcher records the events instead of invoking a worker.
 */
describe('training units: fan-out bookkeeping', () => {
  let s3: TestS3;
  let services: Services;
  const dispatched: TrainWorkerEvent[] = [];
  const recorder: JobDispatcher = { dispatch: async (event) => void dispatched.push(event) };
  let deps: WorkerDeps;

  beforeAll(async () => {
    s3 = await startTestS3();
    services = createServices(
      loadConfig({ LYMPHOSCOPE_LOG_LEVEL: 'silent', LYMPHOSCOPE_FOLD_CONCURRENCY: '3' }),
      { store: s3.store, dispatcher: recorder, registration: modelArtifacts },
    );
    deps = { ...services, recipe: { folds: 3, seeds: 2 } };
  });

  afterAll(() => s3?.stop());
  beforeEach(() => (dispatched.length = 0));

  async function queuedJob(id: string): Promise<JobRecord> {
    const job = queuedJobRecord(id);
    await services.docs.create(layout.job(id), job);
    return job;
  }
  const read = async (id: string) => (await services.docs.get<JobRecord>(layout.job(id)))!.value;
  const start = (jobId: string, invocationId = 'start') =>
    runTrainingInvocation(deps, { jobId, invocationId, remainingMs: () => 900_000 });

  it('hands out the served network first, then folds, at most foldConcurrency at once; a repeat re-sends only those without a worker', async () => {
    await queuedJob('job-fanout');
    expect(await start('job-fanout')).toBe('fanned-out');
    const job = await read('job-fanout');
    expect(job.status).toBe('RUNNING');
    expect(job.units!.map((u) => [u.kind, u.seed, u.fold])).toEqual([
      ['FINAL', null, null],
      ...[11, 12].flatMap((seed) => [0, 1, 2].map((fold) => ['FOLD', seed, fold])),
    ]);
    expect(job.units!.map((u) => u.dispatched)).toEqual([true, true, true, false, false, false, false]);
    expect(dispatched).toEqual([0, 1, 2].map((unit) => ({ jobId: 'job-fanout', unit })));

    // Unit 1 is running (live lease), unit 2's worker vanished (lease lapsed): a repeated start event
    // re-sends 0 (never started) and 2, not 1, and hands out nothing new.
    const later = new Date(Date.now() + 60_000).toISOString();
    const earlier = new Date(Date.now() - 60_000).toISOString();
    await services.docs.update<JobRecord>(layout.job('job-fanout'), (j) => ({
      ...j,
      units: j.units!.map((u, i) =>
        i === 1
          ? { ...u, state: 'RUNNING', lease: { owner: 'w1', expiresAt: later } }
          : i === 2
            ? { ...u, state: 'RUNNING', lease: { owner: 'w2', expiresAt: earlier } }
            : u,
      ),
    }));
    dispatched.length = 0;
    expect(await start('job-fanout', 'start-again')).toBe('fanned-out');
    expect(dispatched).toEqual([0, 2].map((unit) => ({ jobId: 'job-fanout', unit })));
    expect((await read('job-fanout')).units!.filter((u) => u.dispatched)).toHaveLength(3);

    // A second invocation for the running unit finds its lease held and does nothing.
    const duplicate = await runTrainingInvocation(deps, {
      jobId: 'job-fanout',
      unit: 1,
      invocationId: 'another',
      remainingMs: () => 900_000,
    });
    expect(duplicate).toBe('skipped');
    expect((await read('job-fanout')).units![1].lease!.owner).toBe('w1');
  });

  it('a unit that starts after a cancel request ends the job and every unit CANCELLED, and trains nothing', async () => {
    await queuedJob('job-cancel');
    await start('job-cancel');
    await services.training.cancel({ keyId: 'k', role: 'SCIENTIST', partnerId: 'p' }, 'job-cancel');
    dispatched.length = 0;
    const outcome = await runTrainingInvocation(deps, {
      jobId: 'job-cancel',
      unit: 2,
      invocationId: 'late',
      remainingMs: () => 900_000,
    });
    expect(outcome).toBe('cancelled');
    const job = await read('job-cancel');
    expect(job.status).toBe('CANCELLED');
    expect(new Set(job.units!.map((u) => u.state))).toEqual(new Set(['CANCELLED']));
    expect(job.units!.every((u) => u.lease === null)).toBe(true);
    expect(dispatched).toEqual([]);
    expect(await s3.store.listAll('jobs/job-cancel/folds/')).toEqual([]);
  });

  it('reading a fanned-out job whose units all went quiet for a lease re-sends its start event, once', async () => {
    await queuedJob('job-stalled');
    await start('job-stalled');
    const quiet = new Date(Date.now() - 5 * 60_000).toISOString();
    await services.docs.update<JobRecord>(layout.job('job-stalled'), (j) => ({ ...j, updatedAt: quiet }));
    dispatched.length = 0;
    await services.training.getAndResumeIfStalled('job-stalled');
    await services.training.getAndResumeIfStalled('job-stalled');
    expect(dispatched).toEqual([{ jobId: 'job-stalled' }]);

    // A job whose units write (a live one) is left alone.
    await queuedJob('job-live');
    await start('job-live');
    dispatched.length = 0;
    await services.training.getAndResumeIfStalled('job-live');
    expect(dispatched).toEqual([]);
  });
});
