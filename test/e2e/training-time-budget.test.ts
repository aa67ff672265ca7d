import { ok, waitFor } from '../helpers/graphql';
import { importSample, startE2eStack, startJob, watchJob, type E2eStack } from '../helpers/e2e-stack';

/**
 * A Lambda has at most 15 minutes; a job longer than that must pause between epochs and continue in a
 * fresh invocation. Here every worker gets a 30 s "Lambda timeout" and keeps 30 s back
 * (LYMPHOSCOPE_WORKER_SAFETY_MS), so from its first epoch on it never has time for another: each worker
 * trains one epoch, checkpoints, releases its lease and invokes the next, which resumes. That holds on a
 * fast machine as on a slow one (a shorter reserve would let a fast machine finish in one invocation), and
 * the timeout leaves room for start-up, one epoch and the final evaluation (on two busy cores a worker
 * starts in 4-7 s and an epoch takes 1-3 s). A worker killed at the timeout would be retried, and the
 * test fails on that: every continuation must be a clean one.
 */
describe('training within a Lambda time budget', () => {
  let e2e: E2eStack;
  let datasetId: string;

  beforeAll(async () => {
    e2e = await startE2eStack('time-budget', {
      workerTimeoutMs: 30_000,
      env: { LYMPHOSCOPE_WORKER_SAFETY_MS: '30000' },
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
      epochs: 4,
      batchSize: 8,
      patience: 4,
    });
    const epochsSeen: number[] = [];
    let done;
    try {
      done = await watchJob(e2e, job.id, (j) => j.status === 'SUCCEEDED', 240_000, epochsSeen);
    } finally {
      clearInterval(watcher);
    }

    // One invocation per epoch: those of the cross-validation folds the decisions are fitted on
    // (LYMPHOSCOPE_RECIPE_FOLDS, 2 in tests; early stopping may end a fold before 4), then the served network's 4.
    expect(done.attempts).toBeGreaterThanOrEqual(2 + 4);
    expect(done.attempts).toBeLessThanOrEqual(2 * 4 + 4);
    expect(done.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
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
    expect(modelVersion.history).toHaveLength(4);
  }, 300_000);
});
