import { mkdtemp, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { startLocalStack, type LocalStack } from '../../src/local/stack';
import { createServices } from '../../src/services';
import { MAX_RESUMES_WITHOUT_PROGRESS, type JobRecord } from '../../src/services/training';
import { layout } from '../../src/storage/layout';
import { graphqlClient, ok, waitFor } from '../helpers/graphql';
import { modelArtifacts } from '../../src/services/model-artifacts';

// A SIGKILL of the local stack mid-write used to leave a 0-byte metadata file in the local S3's
// directory; from then on every read of that object (and every listing of its prefix) failed, health
// stayed degraded and the job stayed RUNNING. Here the damage is made by hand, as the kill left it,
// between two starts of the stack on the same data directory.

const ADMIN_KEY = 'lsk_crash_repair_admin_0123456789abcdef';
const LEASE_MS = 2000;
let dir: string;
let stack: LocalStack | undefined;

function runningJob(id: string, leaseOwner: string): JobRecord {
  const long = new Date(Date.now() - 60_000).toISOString();
  return {
    id,
    status: 'RUNNING',
    datasetId: 'ds-crashed',
    snapshotId: 'snap-crashed',
    config: { epochs: 2, inputSize: 32 } as JobRecord['config'],
    epoch: 0,
    progress: 0,
    etaSeconds: null,
    imagesPerSecond: null,
    history: [],
    split: { train: 0, validation: 0, test: 0, trainSubjects: 0, validationSubjects: 0, testSubjects: 0 },
    modelVersion: null,
    error: null,
    attempts: 1,
    createdAt: long,
    updatedAt: long,
    startedAt: long,
    finishedAt: null,
    cancelRequested: false,
    createdBy: 'key-crashed',
    // Its worker was killed a minute ago: the lease lapsed.
    lease: { owner: leaseOwner, expiresAt: long },
  };
}

// The same S3 port on both starts: the GraphQL handler, loaded once per test file, keeps the endpoint
// it read from the environment at import.
const start = (s3Port = 0) =>
  startLocalStack({
    dataDir: dir,
    s3Port,
    adminKey: ADMIN_KEY,
    demoModel: false,
    logLevel: 'silent',
    workerRetryDelayMs: 200,
    env: { LYMPHOSCOPE_WORKER_LEASE_MS: String(LEASE_MS) },
  });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-crash-repair-'));
});
afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

it('repairs or quarantines what a kill damaged, starts healthy, and the stalled job ends FAILED with a reason', async () => {
  stack = await start();
  const jobId = 'job-crashed';
  await stack.services.docs.create(layout.job(jobId), runningJob(jobId, 'killed-worker'));
  await stack.services.store.put(layout.jobCheckpoint(jobId), Buffer.from('half a checkpoint'), {
    contentType: 'application/octet-stream',
  });
  const bucketDir = path.join(dir, 's3', stack.bucket);
  const s3Port = stack.s3.port;
  await stack.stop();
  stack = undefined;

  // What the kill left: empty metadata files, and a temporary file of a write in flight.
  const jobDir = path.join(bucketDir, 'jobs', jobId);
  await truncate(path.join(jobDir, 'job.json._S3rver_metadata.json'), 0);
  await truncate(path.join(jobDir, 'checkpoint', 'latest.bin._S3rver_metadata.json'), 0);
  await writeFile(
    path.join(jobDir, 'job.json._S3rver_object.0b4e6f5c-2a7d-4d52-9a51-3b1f0c8e7d21.tmp'),
    '{"sta',
  );

  stack = await start(s3Port);
  expect(stack.s3Repairs.map((r) => [r.key, r.action]).sort()).toEqual([
    [`jobs/${jobId}/checkpoint/latest.bin`, 'quarantined'],
    [`jobs/${jobId}/job.json`, 'rebuilt'],
    [`jobs/${jobId}/job.json`, 'removed'],
  ]);
  expect(await readdir(path.join(dir, 's3-quarantine'))).toHaveLength(1);

  const gql = graphqlClient(stack.url, ADMIN_KEY);
  expect(ok(await gql('{ health { status storageReachable } }')).health).toEqual({
    status: 'ok',
    storageReachable: true,
  });
  const listed = ok(await gql('{ trainingJobs(first: 10) { edges { node { id status } } } }'));
  expect(listed.trainingJobs.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(jobId);

  // Reading the job starts a new worker. It cannot resume: its snapshot is gone (the worker says so), or,
  // when workers start slower than the 2 s lease here, the restarts without progress run out first.
  const ended = await waitFor(
    'the stalled job to end',
    async () => {
      const { trainingJob } = ok(
        await gql('query($id: ID!) { trainingJob(id: $id) { status error } }', { id: jobId }),
      );
      return trainingJob.status === 'RUNNING' ? null : trainingJob;
    },
    150_000,
    1000,
  );
  expect(ended.status).toBe('FAILED');
  expect(ended.error).toMatch(/snapshot .* is missing|could not resume/i);
}, 300_000);

it('ends a job FAILED when its worker never comes back, after a few restarts without progress', async () => {
  const dispatched: string[] = [];
  const services = createServices(
    loadConfig({
      ...process.env,
      LYMPHOSCOPE_WORKER_LEASE_MS: '200',
      LYMPHOSCOPE_LOG_LEVEL: 'silent',
    }),
    {
      store: stack!.services.store,
      dispatcher: { dispatch: async ({ jobId }) => void dispatched.push(jobId) },
      registration: modelArtifacts,
    },
  );
  const jobId = 'job-never-resumes';
  await services.docs.create(layout.job(jobId), runningJob(jobId, 'vanished-worker'));
  let job: JobRecord | null = null;
  for (let read = 0; read < 20 && job?.status !== 'FAILED'; read++) {
    job = await services.training.getAndResumeIfStalled(jobId);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  expect(dispatched).toHaveLength(MAX_RESUMES_WITHOUT_PROGRESS);
  expect(job).toMatchObject({ status: 'FAILED', lease: null });
  expect(job!.error).toMatch(/could not resume/);
  expect((await services.training.get(jobId))!.status).toBe('FAILED');
});
