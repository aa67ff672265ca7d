import { encodeBmp, syntheticCell } from '../../src/ml/data/synthetic';
import type { ModelCard } from '../../src/services/models';
import type { JobRecord } from '../../src/services/training';
import { finishTrainingJob } from '../../src/services/training-finish';
import { layout } from '../../src/storage/layout';
import { FINAL, startE2eStack, type E2eStack } from '../helpers/e2e-stack';
import { ok, waitFor } from '../helpers/graphql';

/**
 * Parallel folds (issue 16) through the real stack: the API behind HTTP, each cross-validation fold and
 * the served network in its own child process of the Lambda emulator (three may run, the job allows two
 * at once), S3 on 127.0.0.1. The cells are seeded synthetic ones (src/ml/data/synthetic.ts, 64 px, 16 subjects
 * of 4 cells, half ALL), the recipe 2 folds x 1 seed (test/helpers/node-environment.js), the networks
 * tiny: these tests are about the fan-out, not about what the figures say.
 */
const SUBJECTS = 16;
const CELLS_PER_SUBJECT = 4;
const FOLD_CONCURRENCY = 2;
const FOLD_FIELDS = 'folds { seed fold state epoch epochs attempts error }';
const FIELDS = `id status epoch progress attempts error modelVersion ${FOLD_FIELDS}`;

interface FoldView {
  seed: number;
  fold: number;
  state: string;
  epoch: number;
  epochs: number;
  attempts: number;
  error: string | null;
}
interface FoldJobView {
  id: string;
  status: string;
  epoch: number;
  progress: number;
  attempts: number;
  error: string | null;
  modelVersion: string | null;
  folds: FoldView[];
}

describe('training with parallel folds (e2e)', () => {
  let e2e: E2eStack;
  let datasetId: string;

  beforeAll(async () => {
    e2e = await startE2eStack('folds', {
      workerConcurrency: FOLD_CONCURRENCY + 1,
      env: { LYMPHOSCOPE_FOLD_CONCURRENCY: String(FOLD_CONCURRENCY) },
    });
    const { store } = e2e.stack.services;
    for (let s = 0; s < SUBJECTS; s++) {
      const label = (s % 2) as 0 | 1;
      const subject = label ? String(s + 1) : `H${s + 1}`;
      for (let c = 0; c < CELLS_PER_SUBJECT; c++) {
        const bmp = encodeBmp(syntheticCell(500 + s * 10 + c, { label, size: 64 }));
        const name = `UID_${subject}_1_${c + 1}_${label ? 'all' : 'hem'}.bmp`;
        await store.put(`imports/synth/${label ? 'all' : 'hem'}/${name}`, bmp, { contentType: 'image/bmp' });
      }
    }
    const { createDataset } = ok(
      await e2e.gql('mutation { createDataset(input: { name: "synthetic folds" }) { id } }'),
    );
    datasetId = createDataset.id;
    const { importImages } = ok(
      await e2e.gql('mutation($input: ImportImagesInput!) { importImages(input: $input) { accepted } }', {
        input: { datasetId, s3Prefix: 'imports/synth' },
      }),
    );
    expect(importImages.accepted).toBe(SUBJECTS * CELLS_PER_SUBJECT);
  }, 180_000);

  afterAll(() => e2e?.stop());

  const start = async (input: Record<string, unknown>): Promise<FoldJobView> =>
    ok(
      await e2e.gql(`mutation($input: StartTrainingInput!) { startTraining(input: $input) { ${FIELDS} } }`, {
        input: { datasetId, architecture: 'LYMPHONET', inputSize: 32, batchSize: 8, ...input },
      }),
    ).startTraining;
  const read = async (id: string): Promise<FoldJobView> =>
    ok(await e2e.gql(`query($id: ID!) { trainingJob(id: $id) { ${FIELDS} } }`, { id })).trainingJob;
  const until = (id: string, what: string, test: (job: FoldJobView) => boolean, timeoutMs: number) =>
    waitFor(
      what,
      async () => {
        const job = await read(id);
        if (test(job)) return job;
        if (FINAL.includes(job.status))
          throw new Error(`Job ended ${job.status} (${job.error}) before: ${what}`);
        return null;
      },
      timeoutMs,
      100,
    );
  const trainWorkers = () =>
    e2e.stack.emulator.invocations().filter((i) => i.functionName.endsWith('trainWorker'));
  const versionsOf = async (jobId: string) => {
    const { store, docs } = e2e.stack.services;
    const cards = (await store.listAll('models/')).filter((o) => o.key.endsWith('/card.json'));
    const versions: string[] = [];
    for (const card of cards) {
      const value = (await docs.get<ModelCard>(card.key))!.value;
      if (value.lineage.jobId === jobId) versions.push(value.version);
    }
    return versions.sort();
  };

  it('runs each fold in its own worker, two at a time, resumes a fold whose worker was killed, and registers one version once', async () => {
    const job = await start({ epochs: 6, patience: 6 });
    // Units training at once, from job.json (a process that finished its unit may still be exiting
    // while the next one starts, so the emulator's process count may briefly be one more).
    let busiest = 0;
    let reading = false;
    const watcher = setInterval(() => {
      if (reading) return;
      reading = true;
      e2e.stack.services.docs
        .get<JobRecord>(layout.job(job.id))
        .then((found) => {
          const running = found?.value.units?.filter((u) => u.state === 'RUNNING').length ?? 0;
          busiest = Math.max(busiest, running);
        })
        .catch(() => undefined) // a slow read on a loaded machine: the next one counts
        .finally(() => (reading = false));
    }, 100);
    try {
      // A fold with a checkpointed epoch and more to go: kill every training worker at that moment.
      const running = await until(
        job.id,
        'a fold part-way through',
        (j) => j.folds.some((f) => f.state === 'RUNNING' && f.epoch >= 1 && f.epoch < f.epochs),
        180_000,
      );
      const fold = running.folds.find((f) => f.state === 'RUNNING' && f.epoch >= 1)!;
      const checkpointKey = layout.jobFoldCheckpoint(job.id, fold.seed, fold.fold);
      expect(await e2e.stack.services.store.head(checkpointKey)).not.toBeNull();
      const killed = trainWorkers();
      expect(killed.length).toBeGreaterThan(0);
      for (const worker of killed) worker.child.kill('SIGKILL');

      const done = await until(job.id, 'the job to succeed', (j) => j.status === 'SUCCEEDED', 300_000);
      expect(done.folds).toHaveLength(2);
      expect(done.folds.every((f) => f.state === 'SUCCEEDED')).toBe(true);
      // The killed fold was taken up again (Lambda's retry of the same event) and finished from its checkpoint.
      const again = done.folds.find((f) => f.seed === fold.seed && f.fold === fold.fold)!;
      expect(again.attempts).toBe(2);
      expect(await e2e.stack.services.store.head(checkpointKey)).toBeNull();
      expect(done.progress).toBe(1);
      expect(done.epoch).toBe(6);
      // Never more than the job's fold concurrency at once, although the emulator had room for one more.
      expect(busiest).toBeLessThanOrEqual(FOLD_CONCURRENCY);
      expect(busiest).toBe(FOLD_CONCURRENCY);
      expect(await versionsOf(job.id)).toEqual([done.modelVersion]);
    } finally {
      clearInterval(watcher);
    }

    // Two invocations that both saw the last unit finish race to finish the job: the job is put back to
    // the moment before its finisher ran (every unit done, no claim), and two finishers start together.
    const { docs, store } = e2e.stack.services;
    const before = await versionsOf(job.id);
    await docs.update<JobRecord>(layout.job(job.id), (j) => ({
      ...j,
      status: 'RUNNING',
      modelVersion: null,
      finishedAt: null,
    }));
    await store.delete(layout.jobFinish(job.id));
    const outcomes = await Promise.all([
      finishTrainingJob(e2e.stack.services, { jobId: job.id, invocationId: 'finisher-a' }),
      finishTrainingJob(e2e.stack.services, { jobId: job.id, invocationId: 'finisher-b' }),
    ]);
    expect(outcomes.sort()).toEqual(['skipped', 'succeeded']);
    const after = await versionsOf(job.id);
    expect(after).toHaveLength(before.length + 1);
    const finished = await read(job.id);
    expect(finished.status).toBe('SUCCEEDED');
    expect(after).toContain(finished.modelVersion);
  }, 600_000);

  it('cancel stops every fold', async () => {
    const job = await start({ epochs: 40, patience: 40 });
    await until(
      job.id,
      'two units training',
      (j) => j.folds.some((f) => f.state === 'RUNNING' && f.epoch >= 1) && trainWorkers().length === 2,
      180_000,
    );
    const { cancelTraining } = ok(
      await e2e.gql('mutation($id: ID!) { cancelTraining(id: $id) { id cancelRequested } }', { id: job.id }),
    );
    expect(cancelTraining.cancelRequested).toBe(true);
    await waitFor(
      'every training worker to stop',
      async () => {
        const current = await read(job.id);
        return current.status === 'CANCELLED' &&
          trainWorkers().length === 0 &&
          e2e.stack.emulator.queued() === 0
          ? true
          : undefined;
      },
      60_000,
      100,
    );
    const cancelled = await read(job.id);
    expect(cancelled.modelVersion).toBeNull();
    expect(cancelled.folds.map((f) => f.state).sort()).toEqual(['CANCELLED', 'CANCELLED']);
    const folds = await e2e.stack.services.store.listAll(`jobs/${job.id}/folds/`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(await e2e.stack.services.store.listAll(`jobs/${job.id}/folds/`)).toEqual(folds);
    expect((await read(job.id)).folds).toEqual(cancelled.folds);
    expect(await versionsOf(job.id)).toEqual([]);
  }, 300_000);

  it('a fold that keeps failing is retried, then fails the job with the fold named', async () => {
    const seed = 7;
    const job = await start({ epochs: 3, patience: 3, seed });
    // Fold 1 starts only when a first unit finishes: its checkpoint is unreadable before it ever runs.
    await e2e.stack.services.store.put(
      layout.jobFoldCheckpoint(job.id, seed, 1),
      Buffer.from('not a checkpoint'),
    );
    const failed = await waitFor(
      'the job to fail',
      async () => {
        const current = await read(job.id);
        return FINAL.includes(current.status) ? current : undefined;
      },
      300_000,
      200,
    );
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(/fold 1 of seed 7 failed after 3 attempt/);
    expect(failed.error).toMatch(/checkpoint/);
    const fold = failed.folds.find((f) => f.fold === 1)!;
    expect(fold).toMatchObject({ seed, state: 'FAILED', attempts: 3 });
    expect(failed.modelVersion).toBeNull();
    await waitFor(
      'the workers to stop',
      async () => (trainWorkers().length === 0 ? true : undefined),
      60_000,
      100,
    );
    expect(await versionsOf(job.id)).toEqual([]);
  }, 400_000);
});
