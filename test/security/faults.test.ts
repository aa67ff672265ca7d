import { createServices } from '../../src/services';
import type { LocalStack } from '../../src/local/stack';
import { ErrorCode, LymphoscopeError } from '../../src/errors';
import type { ObjectStore } from '../../src/storage/object-store';
import { graphqlClient, ok } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import {
  bucketKeys,
  createKey,
  errorCode,
  expectNoStack,
  registerUntrainedModel,
  startSecurityStack,
} from './support';
import { modelArtifacts } from '../../src/services/model-artifacts';

/**
 * Storage faults against the real local S3 server, stopped and started again on the same port while the
 * API keeps running: requests fail fast with UNAVAILABLE, health says degraded, nothing half-done becomes
 * visible, and the API serves again once S3 is back, without a restart.
 */

/** How long a request may take to fail while S3 is down: well inside API Gateway's 29 s. */
const BOUNDED_MS = 15_000;

let stack: LocalStack;
let cleanup: () => Promise<void>;
let admin: ReturnType<typeof graphqlClient>;
let scientist: ReturnType<typeof graphqlClient>;
let partner: ReturnType<typeof graphqlClient>;
let datasetId: string;
let productionVersion: string;
const cell = sampleImages()[0];

beforeAll(async () => {
  ({ stack, admin, cleanup } = await startSecurityStack('faults'));
  scientist = graphqlClient(stack.url, (await createKey(admin, 'scientist', 'SCIENTIST')).secret);
  partner = graphqlClient(stack.url, (await createKey(admin, 'partner', 'PARTNER')).secret);
  datasetId = ok(await scientist('mutation { createDataset(input: { name: "faults" }) { id } }'))
    .createDataset.id;
  productionVersion = (await registerUntrainedModel(stack.services)).version;
  ok(await admin('mutation($v: ID!) { promoteModel(version: $v) { version } }', { v: productionVersion }));
});

afterAll(async () => {
  await stack?.s3.start();
  await cleanup?.();
});

const OPERATIONS: Array<{
  name: string;
  client: () => ReturnType<typeof graphqlClient>;
  query: string;
  variables?: () => Record<string, unknown>;
}> = [
  {
    name: 'createDataset',
    client: () => scientist,
    query: 'mutation { createDataset(input: { name: "during the outage" }) { id } }',
  },
  { name: 'datasets', client: () => scientist, query: '{ datasets { edges { node { id } } } }' },
  {
    name: 'addImage',
    client: () => scientist,
    query: 'mutation($input: AddImageInput!) { addImage(input: $input) { duplicate } }',
    variables: () => ({
      input: {
        datasetId,
        label: cell.label,
        imageBase64: cell.bytes.toString('base64'),
        filename: cell.name,
      },
    }),
  },
  {
    name: 'predict',
    client: () => partner,
    query: 'mutation($input: PredictInput!) { predict(input: $input) { id } }',
    variables: () => ({ input: { imageBase64: cell.bytes.toString('base64') } }),
  },
  {
    name: 'createImageUpload',
    client: () => partner,
    query: 'mutation { createImageUpload(input: { contentType: "image/bmp" }) { url } }',
  },
  {
    name: 'promoteModel',
    client: () => admin,
    query: 'mutation($v: ID!) { promoteModel(version: $v) { version } }',
    variables: () => ({ v: productionVersion }),
  },
  {
    name: 'createApiKey',
    client: () => admin,
    query: 'mutation { createApiKey(input: { name: "outage", role: PARTNER }) { secret } }',
  },
];

describe('S3 stopped mid-test', () => {
  it('fails every operation with UNAVAILABLE in bounded time, reports degraded health, then recovers without a restart', async () => {
    const before = await bucketKeys(stack);
    await stack.s3.stop();

    for (const op of OPERATIONS) {
      const started = Date.now();
      const result = await op.client()(op.query, op.variables?.());
      const elapsed = Date.now() - started;
      expect({ op: op.name, code: errorCode(result) }).toEqual({ op: op.name, code: 'UNAVAILABLE' });
      expect(result.errors![0].message).toMatch(/retry later/);
      expect(elapsed).toBeLessThan(BOUNDED_MS);
      expectNoStack(result);
    }
    const started = Date.now();
    const { health } = ok(await graphqlClient(stack.url)('{ health { status storageReachable } }'));
    expect(health).toEqual({ status: 'degraded', storageReachable: false });
    expect(Date.now() - started).toBeLessThan(BOUNDED_MS);

    await stack.s3.start();
    // Nothing any failed request began is in the bucket.
    expect(await bucketKeys(stack)).toEqual(before);

    expect(ok(await graphqlClient(stack.url)('{ health { status storageReachable } }')).health).toEqual({
      status: 'ok',
      storageReachable: true,
    });
    for (const op of OPERATIONS) {
      const result = await op.client()(op.query, op.variables?.());
      expect({ op: op.name, errors: result.errors ?? null }).toEqual({ op: op.name, errors: null });
    }
    const names = ok(await scientist('{ datasets { edges { node { name } } } }')).datasets.edges.map(
      (e: { node: { name: string } }) => e.node.name,
    );
    expect(names.filter((n: string) => n === 'during the outage')).toHaveLength(1);
  });
});

/**
 * A store that is the real S3 store, except that it stops the real S3 server just before the first write
 * matching `trigger`: the fault happens exactly there, and the write fails as it would in production.
 */
function stopS3Before(store: ObjectStore, trigger: RegExp): ObjectStore & { fired: () => boolean } {
  let fired = false;
  return Object.assign(Object.create(store) as ObjectStore, {
    async put(key: string, body: Uint8Array | string, opts?: Parameters<ObjectStore['put']>[2]) {
      if (!fired && trigger.test(key)) {
        fired = true;
        await stack.s3.stop();
      }
      return store.put(key, body, opts);
    },
    fired: () => fired,
  });
}

async function expectUnavailable(work: Promise<unknown>): Promise<void> {
  const error = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LymphoscopeError);
  expect((error as LymphoscopeError).code).toBe(ErrorCode.UNAVAILABLE);
}

describe('writes that must be atomic', () => {
  const VERSIONS = '{ modelVersions(first: 100) { edges { node { version } } } productionModel { version } }';
  const listed = async () =>
    ok(await admin(VERSIONS)).modelVersions.edges.map((e: { node: { version: string } }) => e.node.version);

  it('never lists a model version whose card was not written (weights and graph alone are invisible)', async () => {
    const versionsBefore = await listed();
    const bundle = await stack.services.models.readBundle(productionVersion);
    await stack.services.store.put('models/v0042/weights.bin', bundle.weights);
    await stack.services.store.put('models/v0042/model.json', JSON.stringify(bundle.modelJson));

    expect(await listed()).toEqual(versionsBefore);
    expect(ok(await admin('{ modelVersion(version: "v0042") { version } }')).modelVersion).toBeNull();
    expect(errorCode(await admin('mutation { promoteModel(version: "v0042") { version } }'))).toBe(
      'NOT_FOUND',
    );
    const predict = await partner('mutation($input: PredictInput!) { predict(input: $input) { id } }', {
      input: { imageBase64: cell.bytes.toString('base64'), modelVersion: 'v0042' },
    });
    expect(errorCode(predict)).toBe('NOT_FOUND');
  });

  it('leaves no visible version when S3 goes away between the artifacts and the card, and registers the next one cleanly', async () => {
    const versionsBefore = await listed();
    const faulty = stopS3Before(stack.services.store, /^models\/v\d+\/card\.json$/);
    const services = createServices(stack.services.config, { store: faulty, registration: modelArtifacts });
    const bundle = await stack.services.models.readBundle(productionVersion);
    const card = (await stack.services.models.require(productionVersion)) as unknown as Record<
      string,
      unknown
    >;
    const { version: _v, createdAt: _c, ...rest } = card;

    await expectUnavailable(services.models.register(bundle, rest as never));
    expect(faulty.fired()).toBe(true);
    await stack.s3.start();

    expect(await listed()).toEqual(versionsBefore);
    expect(ok(await admin('{ productionModel { version } }')).productionModel.version).toBe(
      productionVersion,
    );
    const next = await registerUntrainedModel(stack.services, { seed: 3 });
    expect(await listed()).toEqual([next.version, ...versionsBefore]);
  });

  it('shows no prediction whose record was not written when S3 goes away mid-prediction, and listings still work', async () => {
    const LIST = '{ predictions(first: 100) { edges { node { id } } } }';
    const ids = async (client: typeof partner) =>
      ok(await client(LIST)).predictions.edges.map((e: { node: { id: string } }) => e.node.id);
    const ofPartnerBefore = await ids(partner);
    const ofStaffBefore = await ids(scientist);
    const faulty = stopS3Before(stack.services.store, /^predictions\/[^/]+\/[0-9a-z]{26}\.json$/);
    const services = createServices(stack.services.config, { store: faulty, registration: modelArtifacts });
    const partnerId = ok(await partner('{ me { id } }')).me.id;

    await expectUnavailable(
      services.predictions.predict(
        { keyId: partnerId, role: 'PARTNER', partnerId },
        { imageBase64: cell.bytes.toString('base64') },
      ),
    );
    expect(faulty.fired()).toBe(true);
    await stack.s3.start();

    expect(await ids(partner)).toEqual(ofPartnerBefore);
    expect(await ids(scientist)).toEqual(ofStaffBefore);
    // The next prediction goes through and is listed for both.
    const { predict } = ok(
      await partner('mutation($input: PredictInput!) { predict(input: $input) { id } }', {
        input: { imageBase64: cell.bytes.toString('base64') },
      }),
    );
    expect(await ids(partner)).toEqual([predict.id, ...ofPartnerBefore]);
    expect(await ids(scientist)).toEqual([predict.id, ...ofStaffBefore]);
  });
});
