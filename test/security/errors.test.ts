import type { LocalStack } from '../../src/local/stack';
import { graphqlClient, ok } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import { bucketKeys, createKey, errorCode, expectNoStack, startSecurityStack } from './support';

/**
 * What errors tell a client and an operator, with the API configured as in production: no schema hints
 * in variable errors, the real code of every error in the operation log, the request id with an
 * INTERNAL error, and a file name that is checked, read for its subject and stored nowhere.
 */

let stack: LocalStack;
let cleanup: () => Promise<void>;
let admin: ReturnType<typeof graphqlClient>;
let scientist: ReturnType<typeof graphqlClient>;
const cell = sampleImages()[0];
const ADD_IMAGE = 'mutation($input: AddImageInput!) { addImage(input: $input) { image { id filename } } }';

/** The JSON log lines the in-process API writes (stdout and stderr) while `run` runs. */
async function logLines(run: () => Promise<unknown>): Promise<Array<Record<string, unknown>>> {
  const lines: string[] = [];
  const capture = (chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  };
  const spies = [
    jest.spyOn(process.stdout, 'write').mockImplementation(capture),
    jest.spyOn(process.stderr, 'write').mockImplementation(capture),
  ];
  try {
    await run();
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return lines
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  ({ stack, admin, cleanup } = await startSecurityStack('errors', {
    logLevel: 'info',
    env: { LYMPHOSCOPE_STAGE: 'prod' },
  }));
  scientist = graphqlClient(stack.url, (await createKey(admin, 'scientist', 'SCIENTIST')).secret);
});

afterAll(() => cleanup?.());

it('gives no "Did you mean" hint for a wrong value in the variables', async () => {
  const { createDataset } = ok(
    await scientist('mutation { createDataset(input: { name: "hints" }) { id } }'),
  );
  const result = await scientist(ADD_IMAGE, {
    input: { datasetId: createDataset.id, label: 'NORMA', imageBase64: 'Qk0=' },
  });
  expect(errorCode(result)).toBe('BAD_USER_INPUT');
  expect(result.errors![0].message).toMatch(/"NORMA" does not exist in "CellLabel" enum/);
  expect(result.errors![0].message).not.toMatch(/Did you mean|NORMAL/);
  expectNoStack(result);
});

it("logs each operation's errors with the code the client got, not INTERNAL for every one", async () => {
  const lines = await logLines(async () => {
    await graphqlClient(stack.url)('query Anonymous { me { id } }');
    await scientist('query Page { datasets(first: -1) { edges { cursor } } }');
    await scientist('query Forbidden { apiKeys { id } }');
  });
  const operations = Object.fromEntries(
    lines.filter((l) => l.message === 'graphql').map((l) => [l.operation, l.errors]),
  );
  expect(operations).toEqual({
    Anonymous: ['UNAUTHENTICATED'],
    Page: ['BAD_USER_INPUT'],
    Forbidden: ['FORBIDDEN'],
  });
});

it('gives an INTERNAL error the request id, in extensions, the message and a header, as in the log', async () => {
  await stack.services.store.put('datasets/ds-broken/dataset.json', '{"id": "ds-broken", "name": ', {
    contentType: 'application/json',
  });
  let response!: Response;
  const lines = await logLines(async () => {
    response = await fetch(stack.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': (await createKey(admin, 'x', 'ADMIN')).secret,
      },
      body: JSON.stringify({ query: '{ dataset(id: "ds-broken") { id } }' }),
    });
  });
  const body = (await response.json()) as {
    errors: Array<{ message: string; extensions: Record<string, unknown> }>;
  };
  const requestId = response.headers.get('x-request-id');
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  expect(body.errors[0].extensions).toEqual({ code: 'INTERNAL', requestId });
  expect(body.errors[0].message).toBe(
    `Internal error. It has been logged; retry later or report the request id ${requestId}.`,
  );
  expectNoStack(body);
  // The operator finds the failure by that id.
  const logged = lines.find((l) => l.message === 'unexpected error');
  expect(logged?.requestId).toBe(requestId);
  // Every answer carries its id, not only failures.
  const health = await fetch(stack.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ health { status } }' }),
  });
  expect(health.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
});

it('refuses an over-long file name, and stores no file name it accepts, however wide', async () => {
  const { createDataset } = ok(
    await scientist('mutation { createDataset(input: { name: "names" }) { id } }'),
  );
  const before = await bucketKeys(stack);
  const tooLong = `${'細胞'.repeat(99)}.bmp`;
  expect(tooLong.length).toBe(202);
  const refused = await scientist(ADD_IMAGE, {
    input: {
      datasetId: createDataset.id,
      label: 'ALL',
      imageBase64: cell.bytes.toString('base64'),
      filename: tooLong,
    },
  });
  expect(errorCode(refused)).toBe('BAD_USER_INPUT');
  expect(refused.errors![0].extensions).toMatchObject({ field: 'filename' });
  expect(refused.errors![0].message).toMatch(/1-200 printable characters/);
  expect(await bucketKeys(stack)).toEqual(before);
  // 200 characters go through, multi-byte ones too (1800 bytes URL-encoded: the byte limit went with
  // the file name's place in S3 metadata). The name only tells a C-NMC subject: it comes back as null,
  // and no key, metadata or record written holds it.
  const names = [`${'細胞'.repeat(98)}.bmp`, `${'a'.repeat(196)}.bmp`];
  for (const [i, filename] of names.entries()) {
    expect(filename.length).toBe(200);
    const image = sampleImages()[i + 1];
    const { addImage } = ok(
      await scientist(ADD_IMAGE, {
        input: {
          datasetId: createDataset.id,
          label: 'ALL',
          imageBase64: image.bytes.toString('base64'),
          filename,
        },
      }),
    );
    expect(addImage.image.filename).toBeNull();
  }
  const { store } = stack.services;
  const written = (await bucketKeys(stack)).filter((key) => !before.includes(key));
  expect(written.length).toBeGreaterThanOrEqual(names.length);
  for (const key of written) {
    const object = (await store.get(key))!;
    const stored = [key, JSON.stringify(object.info.metadata), object.body.toString('utf8')];
    for (const filename of names) {
      for (const text of stored) {
        expect(text).not.toContain(filename);
        expect(text).not.toContain(encodeURIComponent(filename));
      }
    }
  }
});
