import { ok, waitFor } from '../helpers/graphql';
import { importSample, startE2eStack, startJob, watchJob, type E2eStack } from '../helpers/e2e-stack';

/**
 * A Lambda has at most 15 minutes; a job longer than that must pause between epochs and continue in a
 * fresh invocation. Here every worker gets a 25 s "Lambda timeout" and keeps 20 s back
 * (LYMPHOSCOPE_WORKER_SAFETY_MS), so it may train for about 5 s minus its start-up before it checkpoints,
 * releases its lease and invokes the next worker. A slow machine only makes invocations shorter: a worker
 * always trains at least one epoch, and the timeout leaves room for start-up, that epoch and the final
 * evaluation.
 */
describe('training within a Lambda time budget', () => {
  let e2e: E2eStack;
  let datasetId: string;

  beforeAll(async () => {
    e2e = await startE2eStack('time-budget', {
      workerTimeoutMs: 25_000,
      env: { LYMPHOSCOPE_WORKER_SAFETY_MS: '20000' },
    });
    ({ datasetId } = await importSample(e2e));
  });

  afterAll(() => e2e?.stop());

  it('pauses between epochs, re-invokes itself and finishes over several invocations', async () => {
    const settled: Array<{ requestId: string; exitCode: number | null }> = [];
    e2e.stack.emulator.onSettled = (_fn, requestId, exitCode) => settled.push({ requestId, exitCode });
    const seen = new Map<string, number>();
    const watcher = setInterval(() => {
      for (const i of e2e.stack.emulator.invocations()) seen.set(i.requestId, i.attempt);
    }, 20);

    const job = await startJob(e2e, {
      datasetId,
      architecture: 'LYMPHONET',
      inputSize: 48,
      epochs: 6,
      batchSize: 8,
      patience: 6,
    });
    const epochsSeen: number[] = [];
    let done;
    try {
      done = await watchJob(e2e, job.id, (j) => j.status === 'SUCCEEDED', 240_000, epochsSeen);
    } finally {
      clearInterval(watcher);
    }

    expect(done.attempts).toBeGreaterThan(1);
    expect(done.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(epochsSeen).toEqual([...epochsSeen].sort((a, b) => a - b));
    // Each continuation is a new invocation (a new request id) that ended cleanly, not a crash retry.
    // The last worker exits just after it marks the job SUCCEEDED.
    await waitFor('the last worker to exit', async () => settled.length >= done.attempts, 20_000, 50);
    expect(settled.length).toBe(done.attempts);
    expect(settled.every((s) => s.exitCode === 0)).toBe(true);
    expect(new Set(settled.map((s) => s.requestId)).size).toBe(done.attempts);
    expect([...seen.values()].every((attempt) => attempt === 0)).toBe(true);

    const { modelVersion } = ok(
      await e2e.gql('query($v: ID!) { modelVersion(version: $v) { history { epoch } lineage { jobId } } }', {
        v: done.modelVersion,
      }),
    );
    expect(modelVersion.lineage.jobId).toBe(job.id);
    expect(modelVersion.history).toHaveLength(6);
  }, 300_000);
});
