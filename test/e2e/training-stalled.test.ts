import { waitFor } from '../helpers/graphql';
import {
  importSample,
  readJob,
  startE2eStack,
  startJob,
  watchJob,
  type E2eStack,
} from '../helpers/e2e-stack';

/**
 * Lambda retries a crashed asynchronous invocation twice, then gives up. A job whose worker died three
 * times is not lost: its lease lapses, and the next read of the job (trainingJob) starts one new worker,
 * which resumes from the last checkpoint. Leases last 10 s here (LYMPHOSCOPE_WORKER_LEASE_MS), so a
 * job counts as abandoned 5 s after its lease lapsed, and a new worker has 10 s to start before a read
 * would start another (two busy cores start one in 4-7 s).
 */
describe('a training job whose worker retries are exhausted', () => {
  let e2e: E2eStack;
  let datasetId: string;

  beforeAll(async () => {
    e2e = await startE2eStack('stalled', { env: { LYMPHOSCOPE_WORKER_LEASE_MS: '10000' } });
    ({ datasetId } = await importSample(e2e));
  });

  afterAll(() => e2e?.stop());

  it('is resumed from its checkpoint by one new worker when it is read, and succeeds', async () => {
    // Every attempt of every invocation seen: by the watcher, and by the kill loop below for the
    // attempts it kills (a busy machine can delay the watcher past an attempt's short life).
    const invocations = new Map<string, number[]>();
    const seen = (i: { requestId: string; attempt: number }) => {
      const attempts = invocations.get(i.requestId) ?? [];
      if (!attempts.includes(i.attempt)) invocations.set(i.requestId, [...attempts, i.attempt]);
    };
    const watcher = setInterval(() => e2e.stack.emulator.invocations().forEach(seen), 10);
    try {
      const job = await startJob(e2e, {
        datasetId,
        architecture: 'LYMPHONET',
        inputSize: 48,
        epochs: 8,
        batchSize: 8,
        patience: 8,
      });
      const epochsSeen: number[] = [];
      await watchJob(e2e, job.id, (j) => j.epoch >= 1, 120_000, epochsSeen);
      const beforeKills = await readJob(e2e, job.id);

      // The first invocation and both of its retries die.
      const [first] = e2e.stack.emulator.invocations();
      for (let attempt = 0; attempt <= 2; attempt++) {
        const running = await waitFor(
          `attempt ${attempt}`,
          async () =>
            e2e.stack.emulator
              .invocations()
              .find((i) => i.requestId === first.requestId && i.attempt === attempt),
          30_000,
          10,
        );
        seen(running);
        running.child.kill('SIGKILL');
      }
      await waitFor(
        'the retries to be exhausted',
        async () => e2e.stack.emulator.invocations().length === 0,
        10_000,
        50,
      );
      const stalled = await readJob(e2e, job.id);
      expect(stalled.status).toBe('RUNNING');

      // Polling the job (every 250 ms) is what brings it back, once.
      const done = await watchJob(e2e, job.id, (j) => j.status === 'SUCCEEDED', 240_000, epochsSeen);
      expect(done.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(done.history.slice(0, beforeKills.epoch)).toEqual(beforeKills.history);
      expect(epochsSeen).toEqual([...epochsSeen].sort((a, b) => a - b));
      expect(done.attempts).toBeGreaterThanOrEqual(2);

      const resumed = [...invocations.entries()].filter(([requestId]) => requestId !== first.requestId);
      expect(resumed).toHaveLength(1);
      expect(resumed[0][1]).toEqual([0]);
      expect(invocations.get(first.requestId)).toEqual([0, 1, 2]);
    } finally {
      clearInterval(watcher);
    }
  }, 300_000);
});
