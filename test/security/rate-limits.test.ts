import type { LocalStack } from '../../src/local/stack';
import { graphqlClient, ok, type GraphqlResult } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import {
  bucketKeys,
  createKey,
  errorCode,
  expectNoStack,
  rawPost,
  registerUntrainedModel,
  startSecurityStack,
} from './support';

/**
 * Per-caller limits over real HTTP: one key's burst is refused with RATE_LIMITED (HTTP 429, Retry-After)
 * while other keys go on being served; requests in flight per key; callers without a key, and guessed
 * keys, per address; pixels decoded per request. Limits scaled down so the test sends a handful.
 */

const CELL = sampleImages()[0];
const CELL_PIXELS = 450 * 450;
const LIMITS = {
  LYMPHOSCOPE_MAX_IN_FLIGHT: '1',
  // Two a minute: a bucket refills one request per 30 s, so however slow the machine, a burst sent here
  // is a burst (the refill itself is tested with a fake clock in test/api/rate-limits.test.ts).
  LYMPHOSCOPE_KEY_RATE_PER_MINUTE: '2',
  LYMPHOSCOPE_KEY_BURST: '8',
  LYMPHOSCOPE_ANONYMOUS_RATE_PER_MINUTE: '2',
  LYMPHOSCOPE_ANONYMOUS_BURST: '3',
  LYMPHOSCOPE_MAX_PIXELS_PER_REQUEST: String(2 * CELL_PIXELS),
};
const PREDICT_BATCH = 'mutation($inputs: [PredictInput!]!) { predictBatch(inputs: $inputs) { id } }';
const inline = { imageBase64: CELL.bytes.toString('base64'), explain: true };

let stack: LocalStack;
let cleanup: () => Promise<void>;
let adminClient: ReturnType<typeof graphqlClient>;
const keys: Record<string, string> = {};

beforeAll(async () => {
  ({ stack, admin: adminClient, cleanup } = await startSecurityStack('rate-limits', { env: LIMITS }));
  const card = await registerUntrainedModel(stack.services);
  ok(await adminClient('mutation($v: ID!) { promoteModel(version: $v) { version } }', { v: card.version }));
  for (const name of ['burst', 'other', 'slow', 'pixels']) {
    keys[name] = (await createKey(adminClient, name, 'PARTNER')).secret;
  }
  keys.importer = (await createKey(adminClient, 'importer', 'SCIENTIST')).secret;
});

afterAll(() => cleanup?.());

function expectRateLimited(result: GraphqlResult, limitName: string): void {
  expect(result.status).toBe(429);
  expect(errorCode(result)).toBe('RATE_LIMITED');
  expect(result.errors![0].extensions).toMatchObject({ limitName, limit: expect.any(Number) });
  expect(result.errors![0].extensions!.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  expectNoStack(result);
}

it("refuses one key's burst past LYMPHOSCOPE_KEY_BURST while another key is served", async () => {
  const burst = graphqlClient(stack.url, keys.burst);
  const other = graphqlClient(stack.url, keys.other);
  for (let i = 0; i < 8; i++) ok(await burst('{ me { role } }'));
  const refused = await burst('{ me { role } }');
  expectRateLimited(refused, 'LYMPHOSCOPE_KEY_RATE_PER_MINUTE');
  expect(refused.errors![0].extensions!.limit).toBe(2);
  expect(refused.errors![0].extensions!.retryAfterSeconds).toBeLessThanOrEqual(30);
  expect(refused.errors![0].message).toMatch(/limit is 2 per minute, in bursts of up to 8/);
  // The header says the same as the extension.
  const raw = await fetch(stack.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': keys.burst },
    body: JSON.stringify({ query: '{ me { role } }' }),
  });
  expect(raw.status).toBe(429);
  expect(Number(raw.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  // Another key is not held back.
  expect(ok(await other('{ me { role } }')).me.role).toBe('PARTNER');
});

it('refuses a second request of a key while its first is in flight (LYMPHOSCOPE_MAX_IN_FLIGHT=1)', async () => {
  const slow = graphqlClient(stack.url, keys.slow);
  const other = graphqlClient(stack.url, keys.other);
  let answered = false;
  const batch = slow(PREDICT_BATCH, { inputs: [inline, inline] }).finally(() => (answered = true));
  // The batch decodes, predicts and explains two 450x450 cells: tens of milliseconds on onnxruntime,
  // more under load. Ask again, a few milliseconds apart, until the batch is seen in flight: each
  // answered ask spends one of the key's 8 tokens (a refused one none), so at most 6, leaving one for the
  // ask after the batch. (Asks 200 ms apart missed a batch that had already answered.)
  let second: GraphqlResult | undefined;
  for (let ask = 0; ask < 6 && !answered; ask++) {
    await new Promise((resolve) => setTimeout(resolve, 15));
    const result = await slow('{ me { role } }');
    if (result.status === 429) {
      second = result;
      break;
    }
  }
  expect(second).toBeDefined();
  expectRateLimited(second!, 'LYMPHOSCOPE_MAX_IN_FLIGHT');
  expect(second!.errors![0].message).toMatch(
    /This API key already has 1 request in progress, the most allowed at once/,
  );
  expect(ok(await other('{ me { role } }')).me.role).toBe('PARTNER');
  expect(ok(await batch).predictBatch).toHaveLength(2);
  // The slot is free again once the batch has answered.
  ok(await slow('{ me { role } }'));
});

it('bounds the pixels decoded per request, in a batch and across aliased predicts', async () => {
  const pixels = graphqlClient(stack.url, keys.pixels);
  const before = await bucketKeys(stack);
  const batch = await pixels(PREDICT_BATCH, { inputs: [inline, inline, inline] });
  expect(errorCode(batch)).toBe('PAYLOAD_TOO_LARGE');
  expect(batch.errors![0].extensions).toMatchObject({
    limit: 2 * CELL_PIXELS,
    limitName: 'LYMPHOSCOPE_MAX_PIXELS_PER_REQUEST',
  });
  expect(batch.errors![0].message).toMatch(/would decode 607500 pixels; the limit per request is 405000/);
  // Refused before any prediction was made: nothing new in the bucket.
  expect(await bucketKeys(stack)).toEqual(before);

  const aliased = await pixels(
    `mutation($input: PredictInput!) { a: predict(input: $input) { id } b: predict(input: $input) { id } c: predict(input: $input) { id } }`,
    { input: { ...inline, explain: false } },
  );
  // Mutations run in order: a and b decode their cells, c finds the budget spent (and, predict being
  // non-null, takes the whole answer's data with it).
  expect(aliased.errors?.map((e) => [e.extensions?.code, (e as { path?: string[] }).path])).toEqual([
    ['PAYLOAD_TOO_LARGE', ['c']],
  ]);
  const records = (await bucketKeys(stack)).filter(
    (k) => !before.includes(k) && /^predictions\/[^/]+\/[0-9a-z]{26}\.json$/.test(k),
  );
  expect(records).toHaveLength(2);
});

it('does not hold a bulk import to the pixel budget of one request (it has its own file limit)', async () => {
  const importer = graphqlClient(stack.url, keys.importer);
  const cells = sampleImages().slice(0, 4);
  for (const cell of cells) await stack.services.store.put(`imports/budget/all/${cell.name}`, cell.bytes);
  const { createDataset } = ok(
    await importer('mutation { createDataset(input: { name: "budget" }) { id } }'),
  );
  const { importImages } = ok(
    await importer(
      'mutation($input: ImportImagesInput!) { importImages(input: $input) { accepted rejected { key code } } }',
      { input: { datasetId: createDataset.id, s3Prefix: 'imports/budget' } },
    ),
  );
  // Four cells are twice this request's pixel budget.
  expect(importImages).toEqual({ accepted: 4, rejected: [] });
});

it('limits callers without a key per address, and guessed keys by their failures per address', async () => {
  const anonymous = graphqlClient(stack.url);
  for (let i = 0; i < 3; i++) ok(await anonymous('{ health { status } }'));
  expectRateLimited(await anonymous('{ health { status } }'), 'LYMPHOSCOPE_ANONYMOUS_RATE_PER_MINUTE');
  // A key's own bucket is separate from its address's.
  ok(await graphqlClient(stack.url, keys.other)('{ me { role } }'));

  // Three wrong keys from this address use up its failures; the fourth guess is refused unread.
  for (let i = 0; i < 3; i++) {
    const guess = `lsk_guessed_key_number_${i}_0123456789abcdef`;
    expect(errorCode(await graphqlClient(stack.url, guess)('{ me { role } }'))).toBe('UNAUTHENTICATED');
  }
  const { status, text } = await rawPost(stack.url, JSON.stringify({ query: '{ me { role } }' }), {
    'content-type': 'application/json',
    'x-api-key': 'lsk_guessed_key_number_4_0123456789abcdef',
  });
  expect(status).toBe(429);
  expect(JSON.parse(text).errors[0].message).toMatch(/from this address after failed authentications/);
});
