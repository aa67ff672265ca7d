import type { LocalStack } from '../../src/local/stack';
import { createServices } from '../../src/services';
import type { Caller } from '../../src/services/auth';
import { runBounded } from '../../src/concurrency/run-bounded';
import type { JobRecord } from '../../src/services/training';
import { runTrainingJob } from '../../src/services/training-worker';
import { layout } from '../../src/storage/layout';
import { graphqlClient, ok, type GraphqlResult } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import { createKey, errorCode, registerUntrainedModel, startSecurityStack } from './support';
import { postUpload, UPLOAD_GRANT } from '../helpers/upload';
import { modelArtifacts } from '../../src/services/model-artifacts';

/**
 * Races that must have exactly one winner: two promotes from the same view of production, two
 * confirmations of one upload, two training workers handed the same job. The races run for real
 * (concurrent HTTP requests, concurrent workers) against the local S3's conditional writes.
 */

let stack: LocalStack;
let cleanup: () => Promise<void>;
let admin: ReturnType<typeof graphqlClient>;
let scientist: ReturnType<typeof graphqlClient>;
let partner: ReturnType<typeof graphqlClient>;
const images = sampleImages();

beforeAll(async () => {
  ({ stack, admin, cleanup } = await startSecurityStack('concurrency'));
  scientist = graphqlClient(stack.url, (await createKey(admin, 'scientist', 'SCIENTIST')).secret);
  partner = graphqlClient(stack.url, (await createKey(admin, 'partner', 'PARTNER')).secret);
});

afterAll(() => cleanup?.());

/** One success and one CONFLICT, in either order; returns the index of the winner. */
function exactlyOneWinner(results: GraphqlResult[]): number {
  const outcomes = results.map((r) => (r.errors?.length ? errorCode(r) : 'ok'));
  expect([...outcomes].sort()).toEqual(['CONFLICT', 'ok']);
  return outcomes.indexOf('ok');
}

it('two promotes from the same view of production: exactly one wins, the other gets CONFLICT', async () => {
  const versions: string[] = [];
  for (let seed = 1; seed <= 3; seed++)
    versions.push((await registerUntrainedModel(stack.services, { seed })).version);
  ok(await admin('mutation($v: ID!) { promoteModel(version: $v) { version } }', { v: versions[0] }));
  const PROMOTE =
    'mutation($v: ID!, $e: ID) { promoteModel(version: $v, expectedCurrentVersion: $e) { version } }';

  let current = versions[0];
  for (let round = 0; round < 6; round++) {
    const contenders = versions.filter((v) => v !== current);
    const results = await Promise.all(contenders.map((v) => admin(PROMOTE, { v, e: current })));
    const winner = contenders[exactlyOneWinner(results)];
    const loser = results.find((r) => r.errors)!;
    expect(loser.errors![0].message).toMatch(/reload and decide again/);
    expect(ok(await admin('{ productionModel { version } }')).productionModel.version).toBe(winner);
    current = winner;
  }

  // One audit record per promote that won, none for those that lost.
  const day = new Date().toISOString().slice(0, 10);
  const { auditLog } = ok(
    await admin('query($d: String) { auditLog(day: $d, first: 100) { edges { node { action } } } }', {
      d: day,
    }),
  );
  expect(
    auditLog.edges.filter((e: { node: { action: string } }) => e.node.action === 'model.promote'),
  ).toHaveLength(1 + 6);
});

it('two confirmations of one upload: exactly one adds the image, the other gets CONFLICT', async () => {
  const datasetId = ok(await scientist('mutation { createDataset(input: { name: "races" }) { id } }'))
    .createDataset.id;
  const CREATE = `mutation($input: CreateImageUploadInput!) { createImageUpload(input: $input) { uploadId ${UPLOAD_GRANT} } }`;
  const CONFIRM = 'mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate image { id } } }';
  const rounds = images.slice(0, 4);
  for (const [i, image] of rounds.entries()) {
    // The last round is an upload for predict (no dataset), confirmed by the partner who made it.
    const forPredict = i === rounds.length - 1;
    const client = forPredict ? partner : scientist;
    const input = forPredict
      ? { contentType: 'image/bmp' }
      : { datasetId, label: image.label, filename: image.name, contentType: 'image/bmp' };
    const { createImageUpload } = ok(await client(CREATE, { input }));
    expect((await postUpload(createImageUpload, image.bytes, 'image/bmp')).status).toBe(204);

    const results = await Promise.all([
      client(CONFIRM, { id: createImageUpload.uploadId }),
      client(CONFIRM, { id: createImageUpload.uploadId }),
    ]);
    const winner = results[exactlyOneWinner(results)];
    expect(winner.data!.confirmImageUpload.duplicate).toBe(false);
    expect(results.find((r) => r.errors)!.errors![0].message).toMatch(/already confirmed/);
  }
  const { dataset } = ok(
    await scientist('query($id: ID!) { dataset(id: $id) { imageCount } }', { id: datasetId }),
  );
  expect(dataset.imageCount).toBe(rounds.length - 1);
});

it('two training workers racing for one job: exactly one trains, the other is skipped', async () => {
  // A second composition of the services whose dispatcher does nothing, so the only workers are the
  // two started here (the stack's Lambda emulator would otherwise start a third).
  const dispatched: string[] = [];
  const services = createServices(stack.services.config, {
    dispatcher: { dispatch: async (e) => void dispatched.push(e.jobId) },
    registration: modelArtifacts,
  });
  const caller: Caller = { keyId: 'race-test', role: 'SCIENTIST', partnerId: 'race-test' };
  const dataset = await services.datasets.create(caller, 'worker race');
  await runBounded(
    images.map((image) => async () => {
      await services.datasets.addImageBytes(caller, {
        datasetId: dataset.id,
        label: image.label,
        bytes: image.bytes,
        filename: image.name,
        source: 'test',
      });
    }),
    4,
  );
  const job = await services.training.start(caller, {
    datasetId: dataset.id,
    architecture: 'vanilla',
    inputSize: 32,
    epochs: 1,
    batchSize: 16,
    patience: 1,
    augment: false,
  });
  expect(dispatched).toEqual([job.id]);
  const versionsBefore = (await services.models.list(100)).items.length;

  const deps = {
    store: services.store,
    docs: services.docs,
    models: services.models,
    dispatcher: services.dispatcher,
    log: services.log,
  };
  const run = (invocationId: string) =>
    runTrainingJob(deps, { jobId: job.id, invocationId, remainingMs: () => 15 * 60_000 });
  const outcomes = await Promise.all([run('invocation-a'), run('invocation-b')]);
  expect([...outcomes].sort()).toEqual(['skipped', 'succeeded']);

  const finished = (await services.docs.get<JobRecord>(layout.job(job.id)))!.value;
  expect(finished).toMatchObject({ status: 'SUCCEEDED', attempts: 1, epoch: 1, lease: null });
  expect((await services.models.list(100)).items.length).toBe(versionsBefore + 1);
  // A late duplicate delivery of the same event finds the job finished and does nothing.
  expect(await run('invocation-c')).toBe('skipped');
  expect((await services.models.list(100)).items.length).toBe(versionsBefore + 1);
  // The winner trains the out-of-fold folds (2 in tests) before the served network.
}, 180_000);
