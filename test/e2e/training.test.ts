import { ok } from '../helpers/graphql';
import {
  errorCode,
  importSample,
  readJob,
  startE2eStack,
  startJob,
  watchJob,
  type E2eStack,
} from '../helpers/e2e-stack';

/**
 * Training over real HTTP against the local stack: the API invokes the worker through the Lambda
 * emulator, which runs it in a child process on the real sample images and stores everything in S3.
 */
describe('training jobs end to end', () => {
  let e2e: E2eStack;
  let datasetId: string;

  beforeAll(async () => {
    e2e = await startE2eStack('training');
    ({ datasetId } = await importSample(e2e));
  });

  afterAll(() => e2e?.stop());

  const bucketKeys = async () => (await e2e.stack.services.store.listAll('')).map((o) => o.key).sort();
  const jobCount = async () =>
    ok(await e2e.gql('{ trainingJobs(first: 100) { edges { node { id } } } }')).trainingJobs.edges
      .length as number;

  it('refuses bad configurations with the field named and writes nothing', async () => {
    const before = await bucketKeys();
    const start = (input: Record<string, unknown>) =>
      e2e.gql('mutation($input: StartTrainingInput!) { startTraining(input: $input) { id } }', { input });

    const epochs = await start({ datasetId, epochs: 0, clientToken: 'bad-epochs' });
    expect(errorCode(epochs)).toBe('BAD_USER_INPUT');
    expect(epochs.errors![0].message).toMatch(/epochs/);
    expect(epochs.errors![0].extensions).toMatchObject({ field: 'epochs' });

    const size = await start({ datasetId, inputSize: 7 });
    expect(errorCode(size)).toBe('BAD_USER_INPUT');
    expect(size.errors![0].extensions).toMatchObject({ field: 'inputSize' });

    const fractions = await start({ datasetId, validationFraction: 0.45, testFraction: 0.45 });
    expect(errorCode(fractions)).toBe('BAD_USER_INPUT');

    const missing = await start({ datasetId: 'ds-does-not-exist', clientToken: 'missing-dataset' });
    expect(errorCode(missing)).toBe('NOT_FOUND');

    // An enum value the schema does not know is refused by GraphQL itself, before any resolver runs.
    const architecture = await start({ datasetId, architecture: 'RESNET' });
    expect(errorCode(architecture)).toBe('BAD_USER_INPUT');

    expect(await bucketKeys()).toEqual(before);
  });

  it('is idempotent per clientToken (a refused request does not use it up), and cancels a running job between batches', async () => {
    // A refused request does not use up its token: the retry below, on a dataset that can train, starts.
    const { createDataset } = ok(
      await e2e.gql('mutation { createDataset(input: { name: "too small" }) { id } }'),
    );
    const before = await bucketKeys();
    const tooSmall = await e2e.gql(
      'mutation($input: StartTrainingInput!) { startTraining(input: $input) { id } }',
      {
        input: { datasetId: createDataset.id, clientToken: 'cancel-me' },
      },
    );
    expect(errorCode(tooSmall)).toBe('BAD_USER_INPUT');
    expect(tooSmall.errors![0].message).toMatch(/at least 10/);
    expect(await bucketKeys()).toEqual(before);

    const jobsBefore = await jobCount();
    const input = {
      datasetId,
      architecture: 'LYMPHONET',
      inputSize: 48,
      epochs: 30,
      batchSize: 4,
      patience: 30,
      clientToken: 'cancel-me',
    };
    const first = await startJob(e2e, input);
    const second = await startJob(e2e, input);
    expect(second.id).toBe(first.id);
    expect(await jobCount()).toBe(jobsBefore + 1);

    await watchJob(e2e, first.id, (j) => j.status === 'RUNNING' && j.progress > 0, 120_000);
    const { cancelTraining } = ok(
      await e2e.gql('mutation($id: ID!) { cancelTraining(id: $id) { id status cancelRequested } }', {
        id: first.id,
      }),
    );
    expect(cancelTraining).toMatchObject({ id: first.id, cancelRequested: true });
    const cancelled = await watchJob(e2e, first.id, (j) => j.status === 'CANCELLED', 60_000);
    expect(cancelled.epoch).toBeLessThan(30);
    expect(cancelled.modelVersion).toBeNull();

    const again = await e2e.gql('mutation($id: ID!) { cancelTraining(id: $id) { id } }', { id: first.id });
    expect(errorCode(again)).toBe('CONFLICT');
    // The same token after the end still names the same job: it never trains twice.
    expect((await startJob(e2e, input)).id).toBe(first.id);

    const { trainingJobs } = ok(
      await e2e.gql('{ trainingJobs(status: CANCELLED, first: 10) { edges { node { id status } } } }'),
    );
    expect(trainingJobs.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(first.id);
  }, 200_000);

  it('resumes from the last checkpoint after the worker process is killed mid-epoch, and succeeds', async () => {
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

    const checkpoint = await e2e.stack.services.store.head(`jobs/${job.id}/checkpoint/latest.bin`);
    expect(checkpoint).not.toBeNull();
    const [worker] = e2e.stack.emulator.invocations();
    expect(worker.attempt).toBe(0);
    const beforeKill = await readJob(e2e, job.id);
    worker.child.kill('SIGKILL');

    // The emulator retries the event with the same request id, so the retry takes over its own lease at once.
    const retried = await new Promise<ReturnType<typeof e2e.stack.emulator.invocations>[number]>(
      (resolve, reject) => {
        const deadline = Date.now() + 30_000;
        const poll = () => {
          const next = e2e.stack.emulator.invocations().find((i) => i.attempt === 1);
          if (next) resolve(next);
          else if (Date.now() > deadline) reject(new Error('no retry'));
          else setTimeout(poll, 50);
        };
        poll();
      },
    );
    expect(retried.requestId).toBe(worker.requestId);

    const done = await watchJob(e2e, job.id, (j) => j.status === 'SUCCEEDED', 240_000, epochsSeen);
    expect(done.attempts).toBe(2);
    expect(done.epoch).toBe(8);
    expect(done.progress).toBe(1);
    expect(done.history.map((h: { epoch: number }) => h.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Never went back: the epochs observed only grew, across the kill.
    expect(epochsSeen).toEqual([...epochsSeen].sort((a, b) => a - b));
    expect(epochsSeen[epochsSeen.length - 1]).toBe(8);
    // Resumed, not restarted: the epochs finished before the kill are the same records (same timings).
    expect(done.history.slice(0, beforeKill.epoch)).toEqual(beforeKill.history);

    const { modelVersion } = ok(
      await e2e.gql(
        'query($v: ID!) { modelVersion(version: $v) { lineage { jobId } history { epoch } testMetrics { n } } }',
        {
          v: done.modelVersion,
        },
      ),
    );
    expect(modelVersion.lineage.jobId).toBe(job.id);
    expect(modelVersion.history).toHaveLength(8);
    expect(modelVersion.testMetrics.n).toBe(job.split.test);
  }, 300_000);
});
