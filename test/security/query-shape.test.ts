import type { LocalStack } from '../../src/local/stack';
import { graphqlClient, ok } from '../helpers/graphql';
import { bucketKeys, errorCode, expectNoStack, rawPost, startSecurityStack } from './support';

/**
 * Documents built to make the server work hard before it knows who is asking, sent over real HTTP with
 * no API key: each is refused with a typed error before any resolver runs, and the server keeps
 * answering. The work is bounded by construction (test/api/limits.test.ts counts it), not timed here.
 */

let stack: LocalStack;
let cleanup: () => Promise<void>;
let anonymous: ReturnType<typeof graphqlClient>;

beforeAll(async () => {
  ({ stack, cleanup } = await startSecurityStack('query-shape'));
  anonymous = graphqlClient(stack.url);
});

afterAll(() => cleanup?.());

/** Fragments each spreading the next one twice: 2^n copies of the last one if expanded. */
function fanOut(n: number): string {
  let doc = 'query{...F0}';
  for (let i = 0; i < n; i++) doc += ` fragment F${i} on Query{...F${i + 1} ...F${i + 1}}`;
  return `${doc} fragment F${n} on Query{health{status}}`;
}

it('refuses a ~900-byte fan-out of fragments with no key, by its cost, before anything runs', async () => {
  const before = await bucketKeys(stack);
  const query = fanOut(26);
  expect(query.length).toBeGreaterThan(800);
  expect(query.length).toBeLessThan(1100);
  const result = await anonymous(query);
  expect(result.status).toBe(400);
  expect(errorCode(result)).toBe('GRAPHQL_VALIDATION_FAILED');
  expect(result.errors![0].message).toMatch(/costs 134217728; the limit per operation is 2000/);
  expectNoStack(result);
  // Not UNAUTHENTICATED: the document was judged before the (missing) key was looked at.
  expect(result.errors!.map((e) => e.extensions?.code)).not.toContain('UNAUTHENTICATED');
  // Forty fragments deep is 2^40 fields if expanded: still one pass over the document.
  const wider = await anonymous(fanOut(40));
  expect(errorCode(wider)).toBe('GRAPHQL_VALIDATION_FAILED');
  expect(await bucketKeys(stack)).toEqual(before);
});

it('refuses a selection nested 5,000 deep with a typed 400 instead of overflowing the parser', async () => {
  const deep = '{' + 'health{'.repeat(5000) + 'status' + '}'.repeat(5001);
  const result = await anonymous(deep);
  expect(result.status).toBe(400);
  expect(errorCode(result)).toBe('GRAPHQL_PARSE_FAILED');
  expect(result.errors![0].message).toBe('The query nests brackets more than 64 deep; the limit is 64.');
  expect(result.errors![0].message).not.toMatch(/call stack/i);
  expectNoStack(result);
  // Nested list values are parsed recursively too.
  const deepValue = await anonymous(
    `{ predictions(first: 1, after: ${'['.repeat(5000)}"x"${']'.repeat(5000)}) { edges { cursor } } }`,
  );
  expect(errorCode(deepValue)).toBe('GRAPHQL_PARSE_FAILED');
});

it('refuses a document of more than LYMPHOSCOPE_MAX_QUERY_TOKENS tokens before parsing it', async () => {
  const result = await anonymous(`{ ${'health { status } '.repeat(1300)}}`);
  expect(result.status).toBe(400);
  expect(errorCode(result)).toBe('GRAPHQL_PARSE_FAILED');
  expect(result.errors![0].message).toMatch(/more than 5000 tokens/);
});

it('refuses variables with too many values or too deep, before graphql coerces them', async () => {
  // graphql would coerce every element before predictBatch could say "at most 32": over a minute of
  // work for 1.5 million, with no key.
  const batch = await anonymous('mutation($i: [PredictInput!]!) { predictBatch(inputs: $i) { id } }', {
    i: Array(200_000).fill({}),
  });
  expect(batch.status).toBe(400);
  expect(errorCode(batch)).toBe('BAD_USER_INPUT');
  expect(batch.errors![0].message).toMatch(/The variables hold more than 10000 values/);
  // Written out by hand: JSON.stringify itself recurses too deep for this.
  const deep = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
  const { status, text } = await rawPost(
    stack.url,
    `{"query":"mutation($i: PredictInput!) { predict(input: $i) { id } }","variables":{"i":${deep}}}`,
    { 'content-type': 'application/json' },
  );
  expect(status).toBe(400);
  expect(JSON.parse(text).errors[0]).toEqual({
    message: 'The variables nest more than 64 deep.',
    extensions: { code: 'BAD_USER_INPUT' },
  });
});

it('still answers afterwards', async () => {
  expect(ok(await anonymous('{ health { status } }')).health.status).toBe('ok');
});
