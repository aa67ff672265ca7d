import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalStack } from '../../src/local/stack';
import { graphqlClient, ok } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import { createKey, errorCode, expectNoStack, registerUntrainedModel, startSecurityStack } from './support';
import { postUpload, UPLOAD_GRANT } from '../helpers/upload';

/**
 * The API configured as in production (LYMPHOSCOPE_STAGE=prod), with presigned URLs that live two
 * seconds so their expiry can be watched: no introspection, no stack traces, URLs that stop working.
 */

const TTL_SECONDS = 2;

let stack: LocalStack;
let cleanup: () => Promise<void>;
let admin: ReturnType<typeof graphqlClient>;
let partner: ReturnType<typeof graphqlClient>;
const cell = sampleImages()[0];

beforeAll(async () => {
  ({ stack, admin, cleanup } = await startSecurityStack('prod', {
    env: {
      LYMPHOSCOPE_STAGE: 'prod',
      LYMPHOSCOPE_DOWNLOAD_URL_TTL: String(TTL_SECONDS),
      LYMPHOSCOPE_UPLOAD_URL_TTL: String(TTL_SECONDS),
    },
  }));
  partner = graphqlClient(stack.url, (await createKey(admin, 'partner', 'PARTNER')).secret);
  const card = await registerUntrainedModel(stack.services);
  ok(await admin('mutation($v: ID!) { promoteModel(version: $v) { version } }', { v: card.version }));
});

afterAll(() => cleanup?.());

it('runs as the prod stage', async () => {
  expect(ok(await graphqlClient(stack.url)('{ health { stage status } }')).health).toEqual({
    stage: 'prod',
    status: 'ok',
  });
});

it.each([
  ['__schema', '{ __schema { types { name } } }'],
  ['__type', '{ __type(name: "ApiKey") { fields { name } } }'],
  ['__schema inside a fragment', 'query { ...F } fragment F on Query { __schema { queryType { name } } }'],
])('refuses introspection (%s), even to an admin', async (_what, query) => {
  const result = await admin(query);
  expect(errorCode(result)).toBe('GRAPHQL_VALIDATION_FAILED');
  expect(result.errors![0].message).toMatch(/introspection/i);
  expect(result.data).toBeUndefined();
  expectNoStack(result);
});

it('keeps stack traces and internals out of every error', async () => {
  await stack.services.store.put('datasets/ds-broken/dataset.json', 'not json', {
    contentType: 'application/json',
  });
  const answers = [
    await admin('{ dataset(id: "ds-broken") { id } }'),
    await admin('{ datasetz { id } }'),
    await admin('{ datasets(first: -1) { edges { cursor } } }'),
    await partner('mutation { predict(input: { imageBase64: "Qk0=" }) { id } }'),
    await graphqlClient(stack.url)('{ me { id } }'),
  ];
  expect(answers.map((a) => errorCode(a))).toEqual([
    'INTERNAL',
    'GRAPHQL_VALIDATION_FAILED',
    'BAD_USER_INPUT',
    'UNSUPPORTED_IMAGE',
    'UNAUTHENTICATED',
  ]);
  for (const answer of answers) expectNoStack(answer);
  expect(answers[0].errors![0].extensions).toEqual({ code: 'INTERNAL', requestId: expect.any(String) });
  // "Did you mean" hints would list schema fields: hidden where introspection is off.
  expect(answers[1].errors![0].message).not.toMatch(/Did you mean/);
});

it('hands out presigned URLs that stop working when their TTL is over', async () => {
  const { predict } = ok(
    await partner('mutation($input: PredictInput!) { predict(input: $input) { heatmapUrl imageUrl } }', {
      input: { imageBase64: cell.bytes.toString('base64') },
    }),
  );
  const { createImageUpload } = ok(
    await partner(
      `mutation { createImageUpload(input: { contentType: "image/bmp" }) { uploadId expiresAt ${UPLOAD_GRANT} } }`,
    ),
  );
  const heatmap = new URL(predict.heatmapUrl);
  expect(heatmap.searchParams.get('X-Amz-Expires')).toBe(String(TTL_SECONDS));
  const policy = JSON.parse(
    Buffer.from(
      createImageUpload.fields.find((f: { name: string }) => f.name === 'Policy').value,
      'base64',
    ).toString(),
  );
  const policySeconds = (Date.parse(policy.expiration) - Date.parse(createImageUpload.expiresAt)) / 1000;
  expect(Math.abs(policySeconds)).toBeLessThanOrEqual(1);
  expect((await fetch(heatmap)).status).toBe(200);

  // X-Amz-Date has one-second resolution: wait until the TTL is over whatever the rounding.
  const signedAt = Date.parse(
    heatmap.searchParams
      .get('X-Amz-Date')!
      .replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
  );
  await sleep(Math.max(0, signedAt + (TTL_SECONDS + 1.2) * 1000 - Date.now()));

  for (const url of [predict.heatmapUrl, predict.imageUrl]) {
    const response = await fetch(url);
    expect(response.status).toBe(403);
    expect(await response.text()).toMatch(/expired/);
  }
  const post = await postUpload(createImageUpload, cell.bytes, 'image/bmp');
  expect(post.status).toBe(403);
  expect(await post.text()).toMatch(/expired/);
  const confirm = await partner('mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate } }', {
    id: createImageUpload.uploadId,
  });
  expect(errorCode(confirm)).toBe('BAD_USER_INPUT');
});
