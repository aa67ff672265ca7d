import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
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
import { postUpload, UPLOAD_GRANT } from '../helpers/upload';

/**
 * The checked-in corpus of broken files and every other kind of bad input, sent over real HTTP: each gets
 * a typed error, no error carries a stack, the server keeps answering, and the bucket is the same
 * afterwards (apart from the audit log and the upload intents that presigned URLs need).
 */

const CORPUS_DIR = path.join(__dirname, '..', 'fixtures', 'bad-images');
const CORPUS = readdirSync(CORPUS_DIR)
  .sort()
  .map((name) => ({ name, bytes: readFileSync(path.join(CORPUS_DIR, name)) }));
/** Files whose header claims more pixels than the limit allows; the rest are unreadable. */
const CLAIMS_HUGE_SIZE = /-(100000x100000|65500x65500)\./;
const expectedCode = (name: string) =>
  CLAIMS_HUGE_SIZE.test(name) ? 'PAYLOAD_TOO_LARGE' : 'UNSUPPORTED_IMAGE';

// Limits scaled down so the test sends megabytes, not tens of them; the rules are the same.
const LIMITS = {
  LYMPHOSCOPE_MAX_REQUEST_BYTES: String(2 * 1024 * 1024),
  LYMPHOSCOPE_MAX_INLINE_IMAGE_BYTES: String(1024 * 1024),
  LYMPHOSCOPE_MAX_UPLOAD_BYTES: String(1024 * 1024),
  LYMPHOSCOPE_MAX_QUERY_DEPTH: '5',
  LYMPHOSCOPE_MAX_BATCH: '4',
};

let stack: LocalStack;
let cleanup: () => Promise<void>;
let scientist: ReturnType<typeof graphqlClient>;
let partner: ReturnType<typeof graphqlClient>;
let datasetId: string;
let before: string[];
/** Every answer this file got, checked for stack traces at the end too. */
const answers: GraphqlResult[] = [];
const cell = sampleImages()[0];

const ADD_IMAGE = 'mutation($input: AddImageInput!) { addImage(input: $input) { duplicate image { id } } }';
const PREDICT = 'mutation($input: PredictInput!) { predict(input: $input) { id } }';

async function expectRefused(result: GraphqlResult, code: string, message?: RegExp): Promise<void> {
  answers.push(result);
  expect(errorCode(result)).toBe(code);
  if (message) expect(result.errors![0].message).toMatch(message);
  expectNoStack(result);
}

beforeAll(async () => {
  let admin: ReturnType<typeof graphqlClient>;
  ({ stack, admin, cleanup } = await startSecurityStack('bad-input', { env: LIMITS }));
  scientist = graphqlClient(stack.url, (await createKey(admin, 'scientist', 'SCIENTIST')).secret);
  partner = graphqlClient(stack.url, (await createKey(admin, 'partner', 'PARTNER')).secret);
  datasetId = ok(await scientist('mutation { createDataset(input: { name: "bad input" }) { id } }'))
    .createDataset.id;
  const card = await registerUntrainedModel(stack.services);
  ok(await admin('mutation($v: ID!) { promoteModel(version: $v) { version } }', { v: card.version }));
  // A record corrupted behind the API's back, to provoke an internal error below.
  await stack.services.store.put('datasets/ds-corrupt/dataset.json', '{"id": "ds-corrupt", "name": ', {
    contentType: 'application/json',
  });
  before = await bucketKeys(stack);
});

afterAll(() => cleanup?.());

describe('the bad-image corpus', () => {
  it('covers every kind of broken file the issue lists', () => {
    const names = CORPUS.map((f) => f.name).join(' ');
    for (const kind of [
      /bmp-truncated/,
      /png-truncated/,
      /jpeg-claims-4096x4096/,
      /png-claims-4096x4096/,
      /tiff-claims-4096x4096/,
      /jpeg-truncated/,
      /png-corrupt/,
      /100000x100000/,
      /random-bytes/,
      /empty/,
      /notes\.txt/,
    ]) {
      expect(names).toMatch(kind);
    }
  });

  it.each(CORPUS)('addImage refuses $name inline', async ({ name, bytes }) => {
    const input = { datasetId, label: 'ALL', imageBase64: bytes.toString('base64'), filename: name };
    // Zero bytes are an empty string in base64: refused as input before any decoding.
    await expectRefused(
      await scientist(ADD_IMAGE, { input }),
      bytes.length === 0 ? 'BAD_USER_INPUT' : expectedCode(name),
    );
  });

  it.each(CORPUS)('predict refuses $name inline', async ({ name, bytes }) => {
    await expectRefused(
      await partner(PREDICT, { input: { imageBase64: bytes.toString('base64') } }),
      bytes.length === 0 ? 'BAD_USER_INPUT' : expectedCode(name),
    );
  });

  async function putThenConfirm(
    client: typeof scientist,
    input: Record<string, unknown>,
    bytes: Uint8Array,
    contentType: string,
    /** What storage answers the POST: 204, or S3's refusal of a file outside the form's size range. */
    storage: 204 | 'EntityTooSmall' | 'EntityTooLarge' = 204,
  ): Promise<GraphqlResult> {
    const { createImageUpload } = ok(
      await client(
        `mutation($input: CreateImageUploadInput!) { createImageUpload(input: $input) { uploadId ${UPLOAD_GRANT} } }`,
        {
          input: { ...input, contentType },
        },
      ),
    );
    const posted = await postUpload(createImageUpload, bytes, contentType);
    if (storage === 204) expect(posted.status).toBe(204);
    else {
      expect(posted.status).toBe(400);
      expect(await posted.text()).toContain(`<Code>${storage}</Code>`);
    }
    return client('mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate } }', {
      id: createImageUpload.uploadId,
    });
  }

  it.each(CORPUS)(
    'a presigned upload of $name to a dataset is refused (by storage when empty, else at confirmation)',
    async ({ name, bytes }) => {
      const result = await putThenConfirm(
        scientist,
        { datasetId, label: 'NORMAL', filename: name },
        new Uint8Array(bytes),
        'image/bmp',
        bytes.length === 0 ? 'EntityTooSmall' : 204,
      );
      // An empty file never reached storage: confirming finds nothing uploaded.
      await expectRefused(result, bytes.length === 0 ? 'BAD_USER_INPUT' : expectedCode(name));
    },
  );

  it.each(CORPUS)(
    'a presigned upload of $name for predict is refused (by storage when empty, else at confirmation)',
    async ({ name, bytes }) => {
      await expectRefused(
        await putThenConfirm(
          partner,
          {},
          new Uint8Array(bytes),
          'image/png',
          bytes.length === 0 ? 'EntityTooSmall' : 204,
        ),
        bytes.length === 0 ? 'BAD_USER_INPUT' : expectedCode(name),
      );
    },
  );

  it('importImages rejects every file of the corpus, each with its code, and imports nothing', async () => {
    const { store } = stack.services;
    const keys = CORPUS.map(({ name }) => `imports/corpus/all/${name}`);
    await Promise.all(CORPUS.map(({ bytes }, i) => store.put(keys[i], bytes)));
    try {
      const { importImages } = ok(
        await scientist(
          'mutation($input: ImportImagesInput!) { importImages(input: $input) { accepted rejected { key code } } }',
          { input: { datasetId, s3Prefix: 'imports/corpus' } },
        ),
      );
      expect(importImages.accepted).toBe(0);
      const codes = Object.fromEntries(
        importImages.rejected.map((r: { key: string; code: string }) => [r.key, r.code]),
      );
      // An import judges the name first: .gif and .txt are not image extensions it reads.
      const importCode = (name: string) =>
        /\.(gif|txt)$/.test(name) ? 'BAD_USER_INPUT' : expectedCode(name);
      expect(codes).toEqual(Object.fromEntries(CORPUS.map(({ name }, i) => [keys[i], importCode(name)])));
    } finally {
      await Promise.all(keys.map((key) => store.delete(key)));
    }
  });

  it('predictBatch refuses a batch holding one image whose header claims more than its data', async () => {
    const lying = CORPUS.find((f) => f.name === 'jpeg-claims-4096x4096.jpg')!;
    const result = await partner(
      'mutation($inputs: [PredictInput!]!) { predictBatch(inputs: $inputs) { id } }',
      {
        inputs: [
          { imageBase64: cell.bytes.toString('base64') },
          { imageBase64: lying.bytes.toString('base64') },
        ],
      },
    );
    await expectRefused(result, 'UNSUPPORTED_IMAGE', /claims 4096x4096 pixels but holds 404 bytes/);
  });

  it('refuses an upload over the byte limit (storage itself), and one that was never sent', async () => {
    const oversized = new Uint8Array(1024 * 1024 + 1);
    oversized.set(cell.bytes.subarray(0, 54));
    await expectRefused(
      await putThenConfirm(scientist, { datasetId, label: 'ALL' }, oversized, 'image/bmp', 'EntityTooLarge'),
      'BAD_USER_INPUT',
      /POST the file/,
    );
    const { createImageUpload } = ok(
      await partner('mutation { createImageUpload(input: { contentType: "image/bmp" }) { uploadId } }'),
    );
    await expectRefused(
      await partner('mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate } }', {
        id: createImageUpload.uploadId,
      }),
      'BAD_USER_INPUT',
      /POST the file/,
    );
    await expectRefused(
      await partner(PREDICT, { input: { uploadId: createImageUpload.uploadId } }),
      'BAD_USER_INPUT',
      /not confirmed/,
    );
  });
});

describe('malformed arguments', () => {
  const text = Buffer.from('patient 12, slide 4: looks fine to me\n').toString('base64');
  const CASES: Array<[string, string, Record<string, unknown> | undefined, string]> = [
    [
      'base64 garbage',
      ADD_IMAGE,
      { input: { datasetId: 'DS', label: 'ALL', imageBase64: '!!!not base64???' } },
      'BAD_USER_INPUT',
    ],
    [
      'base64 of impossible length',
      ADD_IMAGE,
      { input: { datasetId: 'DS', label: 'ALL', imageBase64: 'QUJDR' } },
      'BAD_USER_INPUT',
    ],
    [
      'a data URL with garbage',
      PREDICT,
      { input: { imageBase64: 'data:image/png;base64,@@@@' } },
      'BAD_USER_INPUT',
    ],
    ['an empty image', PREDICT, { input: { imageBase64: '' } }, 'BAD_USER_INPUT'],
    [
      'a text file as base64',
      ADD_IMAGE,
      { input: { datasetId: 'DS', label: 'ALL', imageBase64: text } },
      'UNSUPPORTED_IMAGE',
    ],
    [
      'two image sources at once',
      PREDICT,
      { input: { imageBase64: text, uploadId: 'up-x' } },
      'BAD_USER_INPUT',
    ],
    [
      'a wrong enum value in a variable',
      ADD_IMAGE,
      { input: { datasetId: 'DS', label: 'BLAST', imageBase64: text } },
      'BAD_USER_INPUT',
    ],
    [
      'a wrong enum value inline',
      'mutation { addImage(input: { datasetId: "x", label: BLAST, imageBase64: "AAAA" }) { duplicate } }',
      undefined,
      'GRAPHQL_VALIDATION_FAILED',
    ],
    [
      'a wrong role',
      'mutation { createApiKey(input: { name: "x", role: ROOT }) { secret } }',
      undefined,
      'GRAPHQL_VALIDATION_FAILED',
    ],
    [
      'a string for an Int',
      'mutation { startTraining(input: { datasetId: "x", epochs: "many" }) { id } }',
      undefined,
      'GRAPHQL_VALIDATION_FAILED',
    ],
    [
      'an unknown input field',
      'mutation { createDataset(input: { name: "x", owner: "me" }) { id } }',
      undefined,
      'GRAPHQL_VALIDATION_FAILED',
    ],
    ['a syntax error', '{ datasets(first: ) { edges } ', undefined, 'GRAPHQL_PARSE_FAILED'],
    [
      'a path in a dataset id',
      'query { dataset(id: "../../keys/by-hash/x") { id } }',
      undefined,
      'BAD_USER_INPUT',
    ],
    ['a path in a prediction id', 'query { prediction(id: "../ds/x") { id } }', undefined, 'BAD_USER_INPUT'],
    [
      'an import from our own keys',
      'mutation { importImages(input: { datasetId: "DS", s3Prefix: "keys/" }) { accepted } }',
      undefined,
      'BAD_USER_INPUT',
    ],
    [
      'an import climbing out',
      'mutation { importImages(input: { datasetId: "DS", s3Prefix: "../x" }) { accepted } }',
      undefined,
      'BAD_USER_INPUT',
    ],
    [
      'an out-of-range training config',
      'mutation { startTraining(input: { datasetId: "DS", epochs: 100000 }) { id } }',
      undefined,
      'BAD_USER_INPUT',
    ],
    [
      'an upload of a non-image type',
      'mutation { createImageUpload(input: { contentType: "text/html" }) { url } }',
      undefined,
      'BAD_USER_INPUT',
    ],
    [
      'a bad cursor',
      '{ datasets(after: "not a cursor!") { edges { cursor } } }',
      undefined,
      'BAD_USER_INPUT',
    ],
    ['a bad audit day', '{ auditLog(day: "yesterday") { edges { cursor } } }', undefined, 'BAD_USER_INPUT'],
  ];

  it.each(CASES)('%s is refused as %s', async (_what, query, variables, code) => {
    const withDataset = (v: unknown): unknown =>
      JSON.parse(JSON.stringify(v ?? null).replace(/"DS"/g, JSON.stringify(datasetId)));
    const client = /auditLog|createApiKey/.test(query)
      ? graphqlClient(stack.url, stack.adminKey!)
      : scientist;
    const result = await client(
      query.replace(/"DS"/g, JSON.stringify(datasetId)),
      (withDataset(variables) ?? undefined) as Record<string, unknown> | undefined,
    );
    await expectRefused(result, code);
  });
});

describe('limits', () => {
  it('refuses a query deeper than LYMPHOSCOPE_MAX_QUERY_DEPTH before running it', async () => {
    ok(await partner('{ predictions(first: 1) { edges { node { morphology { areaPx } } } } }'));
    await expectRefused(
      await partner(
        '{ predictions(first: 1) { edges { node { morphology { comparisons { feature } } } } } }',
      ),
      'GRAPHQL_VALIDATION_FAILED',
      /6 levels deep; the limit is 5/,
    );
    // Fragments do not hide depth.
    await expectRefused(
      await partner(
        '{ predictions(first: 1) { ...P } } fragment P on PredictionConnection { edges { node { morphology { comparisons { feature } } } } }',
      ),
      'GRAPHQL_VALIDATION_FAILED',
      /levels deep/,
    );
  });

  it('refuses more aliases than LYMPHOSCOPE_MAX_ALIASES', async () => {
    const aliased = (n: number) =>
      `{ ${Array.from({ length: n }, (_, i) => `h${i}: health { status }`).join(' ')} }`;
    ok(await partner(aliased(30)));
    await expectRefused(
      await partner(aliased(31)),
      'GRAPHQL_VALIDATION_FAILED',
      /31 aliases; the limit is 30/,
    );
  });

  it('refuses a query that could cost more than LYMPHOSCOPE_MAX_QUERY_COST', async () => {
    // 20 fields per version: 50 versions cost about 1100, 100 versions about 2200 (the limit is 2000).
    const versions = (first: string) =>
      `modelVersions(first: ${first}) { edges { node { version createdAt architecture inputSize trainedOnBackend threshold reviewLow reviewHigh bestEpoch notes isProduction lineage { jobId datasetId snapshotId parentVersion testSplitId } testMetrics { n accuracy } } } }`;
    ok(await scientist(`{ ${versions('50')} }`));
    await expectRefused(
      await scientist(`{ ${versions('100')} }`),
      'GRAPHQL_VALIDATION_FAILED',
      /costs \d+; the limit per operation is 2000/,
    );
    // A page size given as a variable is priced at the largest page it could ask for.
    await expectRefused(
      await scientist(`query($n: Int) { ${versions('$n')} }`, { n: 1 }),
      'GRAPHQL_VALIDATION_FAILED',
      /costs/,
    );
    // Two cheap halves make one expensive whole.
    await expectRefused(
      await scientist(`{ a: ${versions('50')} b: ${versions('50')} }`),
      'GRAPHQL_VALIDATION_FAILED',
      /costs/,
    );
  });

  it('refuses a page larger than LYMPHOSCOPE_MAX_PAGE_SIZE and a batch larger than LYMPHOSCOPE_MAX_BATCH', async () => {
    await expectRefused(
      await scientist('{ datasets(first: 101) { edges { cursor } } }'),
      'BAD_USER_INPUT',
      /from 1 to 100/,
    );
    const inputs = Array.from({ length: 5 }, () => ({
      imageBase64: cell.bytes.toString('base64').slice(0, 100),
    }));
    await expectRefused(
      await partner('mutation($inputs: [PredictInput!]!) { predictBatch(inputs: $inputs) { id } }', {
        inputs,
      }),
      'PAYLOAD_TOO_LARGE',
      /At most 4/,
    );
  });

  it('refuses an inline image over LYMPHOSCOPE_MAX_INLINE_IMAGE_BYTES', async () => {
    const big = Buffer.alloc(1024 * 1024 + 16, 7).toString('base64');
    await expectRefused(
      await scientist(ADD_IMAGE, { input: { datasetId, label: 'ALL', imageBase64: big } }),
      'PAYLOAD_TOO_LARGE',
      /createImageUpload/,
    );
  });

  it('refuses a body over LYMPHOSCOPE_MAX_REQUEST_BYTES with 413 before parsing it', async () => {
    const body = JSON.stringify({
      query: '{ health { status } }',
      variables: { pad: 'x'.repeat(2 * 1024 * 1024) },
    });
    const { status, text } = await rawPost(stack.url, body, { 'content-type': 'application/json' });
    expect(status).toBe(413);
    const parsed = JSON.parse(text);
    answers.push(parsed);
    expect(parsed.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(parsed.errors[0].message).toMatch(/limit is 2097152/);
    expect(parsed.errors[0].extensions.limit).toBe(2097152);
  });
});

describe('transport', () => {
  it.each([
    ['a GET without a preflight header', 'GET', {}],
    ['a text/plain POST', 'POST', { 'content-type': 'text/plain' }],
    ['a form POST', 'POST', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['a multipart POST', 'POST', { 'content-type': 'multipart/form-data; boundary=x' }],
  ])(
    'blocks %s as possible CSRF, and runs nothing',
    async (_what, method, headers: Record<string, string>) => {
      const query = 'mutation { createDataset(input: { name: "csrf" }) { id } }';
      const keysBefore = await bucketKeys(stack);
      const key = { 'x-api-key': stack.adminKey! };
      const response =
        method === 'GET'
          ? await fetch(`${stack.url}?query=${encodeURIComponent('{ datasets { edges { cursor } } }')}`, {
              headers: key,
            })
          : await fetch(stack.url, {
              method,
              headers: { ...headers, ...key },
              body: JSON.stringify({ query }),
            });
      expect(response.status).toBe(400);
      const body = await response.json();
      answers.push(body);
      expect(body.errors[0].extensions.code).toBe('BAD_REQUEST');
      expect(body.errors[0].message).toMatch(/Cross-Site Request Forgery/);
      expect(body.data).toBeUndefined();
      expect(await bucketKeys(stack)).toEqual(keysBefore);
    },
  );

  it('serves a GET query when the preflight header is there (the block is about CSRF, not GET)', async () => {
    const response = await fetch(`${stack.url}?query=${encodeURIComponent('{ health { status } }')}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    expect(response.status).toBe(200);
    expect((await response.json()).data.health.status).toBe('ok');
  });

  it.each([
    ['a body that is not JSON', '{"query": "{ health { status } }"', 'application/json'],
    ['an empty body', '', 'application/json'],
    ['JSON without a query', '{"variables": {}}', 'application/json'],
    ['a batch (disabled)', '[{"query": "{ health { status } }"}]', 'application/json'],
    ['an XML body', '<query/>', 'application/xml'],
  ])('answers %s with a typed 400', async (_what, body, contentType) => {
    const { status, text } = await rawPost(stack.url, body, { 'content-type': contentType });
    expect(status).toBe(400);
    const parsed = JSON.parse(text);
    answers.push(parsed);
    expect(parsed.errors[0].extensions.code).toBe('BAD_REQUEST');
    expectNoStack(parsed);
  });
});

describe('internal errors', () => {
  it('answers a failure on our side with INTERNAL and no details', async () => {
    const result = await scientist('{ dataset(id: "ds-corrupt") { id name } }');
    await expectRefused(result, 'INTERNAL');
    expect(result.errors![0].extensions).toEqual({ code: 'INTERNAL', requestId: expect.any(String) });
    expect(result.errors![0].message).not.toMatch(/ds-corrupt|dataset\.json|JSON|S3|datasets\//);
  });
});

describe('afterwards', () => {
  it('the server still answers, still predicts, and the bucket holds nothing new but upload intents and audit records', async () => {
    const { health } = ok(await partner('{ health { status storageReachable } }'));
    expect(health).toEqual({ status: 'ok', storageReachable: true });

    const after = await bucketKeys(stack);
    const added = after.filter((k) => !before.includes(k));
    const removed = before.filter((k) => !after.includes(k));
    expect(removed).toEqual([]);
    // Each presigned upload keeps its small intent record (who may confirm it, with what label); the
    // bytes and the confirmation marker of a refused upload are gone.
    const unexpected = added.filter(
      (k) => !/^uploads\/up-[0-9a-z]{26}\/upload\.json$/.test(k) && !k.startsWith('audit/'),
    );
    expect(unexpected).toEqual([]);
    expect(added.filter((k) => k.startsWith('uploads/')).length).toBe(2 * CORPUS.length + 2);
    expect(added.filter((k) => k.startsWith('audit/'))).toEqual([]);

    // A good image still goes through, and only now does the dataset gain an image.
    ok(
      await scientist(ADD_IMAGE, {
        input: {
          datasetId,
          label: cell.label,
          imageBase64: cell.bytes.toString('base64'),
          filename: cell.name,
        },
      }),
    );
    const { predict } = ok(
      await partner('mutation($input: PredictInput!) { predict(input: $input) { id probabilityAll } }', {
        input: { imageBase64: cell.bytes.toString('base64') },
      }),
    );
    expect(predict.probabilityAll).toBeGreaterThanOrEqual(0);
    expect(answers.length).toBeGreaterThan(4 * CORPUS.length);
    for (const answer of answers) expectNoStack(answer);
  });
});
