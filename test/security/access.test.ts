import { createHash, createHmac } from 'node:crypto';
import type { LocalStack } from '../../src/local/stack';
import { graphqlClient, ok, type GraphqlResult } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import {
  bucketKeys,
  createKey,
  errorCode,
  expectNoStack,
  registerUntrainedModel,
  startSecurityStack,
  type Role,
} from './support';
import { postUpload, UPLOAD_GRANT } from '../helpers/upload';

/**
 * Keys, roles, partner isolation, presigned URLs and the audit trail, all over real HTTP against the
 * local stack (the deployed Lambda handler behind an HTTP server, with S3 on 127.0.0.1).
 */

type Client = ReturnType<typeof graphqlClient>;

let stack: LocalStack;
let admin: Client;
let adminKey: string;
let cleanup: () => Promise<void>;
const keys = {} as Record<Role, { id: string; secret: string }>;
const testStarted = new Date();

beforeAll(async () => {
  ({ stack, admin, adminKey, cleanup } = await startSecurityStack('access'));
  for (const role of ['PARTNER', 'SCIENTIST', 'ADMIN'] as const)
    keys[role] = await createKey(admin, `${role.toLowerCase()} key`, role);
  const card = await registerUntrainedModel(stack.services);
  ok(await admin('mutation($v: ID!) { promoteModel(version: $v) { version } }', { v: card.version }));
});

afterAll(() => cleanup?.());

async function post(
  headers: Record<string, string>,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GraphqlResult> {
  const response = await fetch(stack.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  return { status: response.status, data: body.data ?? undefined, errors: body.errors };
}

describe('API keys', () => {
  const ME = '{ me { id role } }';

  it('accepts a key as x-api-key and as Authorization: Bearer', async () => {
    const viaHeader = ok(await post({ 'x-api-key': keys.SCIENTIST.secret }, ME));
    const viaBearer = ok(await post({ authorization: `Bearer ${keys.SCIENTIST.secret}` }, ME));
    const viaLowerBearer = ok(await post({ authorization: `bearer ${keys.PARTNER.secret}` }, ME));
    expect(viaHeader.me).toEqual({ id: keys.SCIENTIST.id, role: 'SCIENTIST' });
    expect(viaBearer.me).toEqual({ id: keys.SCIENTIST.id, role: 'SCIENTIST' });
    expect(viaLowerBearer.me).toEqual({ id: keys.PARTNER.id, role: 'PARTNER' });
  });

  it.each([
    ['no key', {}],
    ['an unknown key', { 'x-api-key': 'lsk_unknown_but_well_formed_key_000000000' }],
    ['an unknown bearer key', { authorization: 'Bearer lsk_unknown_but_well_formed_key_000000000' }],
    ['a malformed key', { 'x-api-key': "'; DROP TABLE keys; --" }],
    ['a Basic authorization', { authorization: 'Basic eDpsc2tfc2VjcmV0' }],
  ])('refuses %s with UNAUTHENTICATED', async (_what, headers: Record<string, string>) => {
    const result = await post(headers, ME);
    expect(errorCode(result)).toBe('UNAUTHENTICATED');
    expect(result.data?.me ?? null).toBeNull();
    expectNoStack(result);
  });

  it('answers health without a key, revealing no data', async () => {
    const { health } = ok(await post({}, '{ health { status storageReachable productionModelVersion } }'));
    expect(health.status).toBe('ok');
  });

  it('shows the secret once: the answer holds it, apiKeys and the bucket never do', async () => {
    const created = ok(
      await admin(
        'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id name role } secret } }',
        {
          input: { name: 'lab system', role: 'PARTNER' },
        },
      ),
    ).createApiKey;
    expect(created.secret).toMatch(/^lsk_[A-Za-z0-9_-]{40,}$/);
    expect(created.apiKey).toMatchObject({ name: 'lab system', role: 'PARTNER' });

    const listing = ok(await admin('{ apiKeys { id name role createdAt revokedAt } }'));
    expect(listing.apiKeys.map((k: { id: string }) => k.id)).toContain(created.apiKey.id);
    const everySecret = [created.secret, adminKey, ...Object.values(keys).map((k) => k.secret)];
    for (const secret of everySecret) expect(JSON.stringify(listing)).not.toContain(secret);

    // The type cannot carry it either: no field of ApiKey is a secret or a hash.
    const fields = ok(await admin('{ __type(name: "ApiKey") { fields { name } } }')).__type.fields.map(
      (f: { name: string }) => f.name,
    );
    expect(fields).not.toEqual(expect.arrayContaining(['secret']));
    expect(fields.filter((f: string) => /secret|hash/i.test(f))).toEqual([]);

    // Every object in the bucket, read back in full: the secrets appear nowhere, their hashes do.
    const objects = await Promise.all(
      (await bucketKeys(stack)).map(async (key) =>
        (await stack.services.store.get(key))!.body.toString('latin1'),
      ),
    );
    const everything = objects.join('\n');
    for (const secret of everySecret) {
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain(secret.slice(4)); // the random part alone
      expect(everything).toContain(createHash('sha256').update(secret).digest('hex'));
    }
  });

  it('revokes a key on the very next request', async () => {
    const { id, secret } = await createKey(admin, 'short-lived partner', 'PARTNER');
    const partner = graphqlClient(stack.url, secret);
    expect(ok(await partner('{ me { id } }')).me.id).toBe(id);

    const { revokeApiKey } = ok(
      await admin('mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }', { id }),
    );
    expect(Date.parse(revokeApiKey.revokedAt)).toBeGreaterThanOrEqual(testStarted.getTime());

    const refused = await partner('{ me { id } }');
    expect(errorCode(refused)).toBe('UNAUTHENTICATED');
    expect(errorCode(await partner('mutation { predict(input: { imageBase64: "AAAA" }) { id } }'))).toBe(
      'UNAUTHENTICATED',
    );
    const listed = ok(await admin('{ apiKeys { id revokedAt } }')).apiKeys.find(
      (k: { id: string }) => k.id === id,
    );
    expect(listed.revokedAt).toBe(revokeApiKey.revokedAt);
  });
});

describe('roles', () => {
  /**
   * Representative operations with the lowest role allowed to run them, and what an allowed caller
   * gets (null: success; a code: the operation ran and refused the input, which proves it got past
   * the role check). Ids are ones that do not exist, so the table changes nothing that matters.
   */
  const OPERATIONS: Array<{ name: string; min: Role; query: string; allowed: string | null }> = [
    { name: 'me', min: 'PARTNER', query: '{ me { id } }', allowed: null },
    { name: 'productionModel', min: 'PARTNER', query: '{ productionModel { version } }', allowed: null },
    {
      name: 'predictions',
      min: 'PARTNER',
      query: '{ predictions(first: 5) { edges { cursor } } }',
      allowed: null,
    },
    {
      name: 'predict',
      min: 'PARTNER',
      query: 'mutation { predict(input: { imageBase64: "!!" }) { id } }',
      allowed: 'BAD_USER_INPUT',
    },
    {
      name: 'createImageUpload (for predict)',
      min: 'PARTNER',
      query: 'mutation { createImageUpload(input: { contentType: "image/bmp" }) { uploadId } }',
      allowed: null,
    },
    {
      name: 'datasets',
      min: 'SCIENTIST',
      query: '{ datasets(first: 5) { edges { cursor } } }',
      allowed: null,
    },
    {
      name: 'createDataset',
      min: 'SCIENTIST',
      query: 'mutation { createDataset(input: { name: "roles" }) { id } }',
      allowed: null,
    },
    {
      name: 'addImage',
      min: 'SCIENTIST',
      query:
        'mutation { addImage(input: { datasetId: "ds-missing", label: ALL, imageBase64: "AAAA" }) { duplicate } }',
      allowed: 'NOT_FOUND',
    },
    {
      name: 'createImageUpload (for a dataset)',
      min: 'SCIENTIST',
      query:
        'mutation { createImageUpload(input: { datasetId: "ds-missing", label: ALL, contentType: "image/bmp" }) { uploadId } }',
      allowed: 'NOT_FOUND',
    },
    {
      name: 'removeImage',
      min: 'SCIENTIST',
      query: 'mutation { removeImage(datasetId: "ds-missing", imageId: "img") }',
      allowed: 'NOT_FOUND',
    },
    {
      name: 'startTraining',
      min: 'SCIENTIST',
      query: 'mutation { startTraining(input: { datasetId: "ds-missing" }) { id } }',
      allowed: 'NOT_FOUND',
    },
    {
      name: 'modelVersions',
      min: 'SCIENTIST',
      query: '{ modelVersions(first: 5) { edges { cursor } } }',
      allowed: null,
    },
    {
      name: 'reviewQueue',
      min: 'SCIENTIST',
      query: '{ reviewQueue(first: 5) { edges { cursor } } }',
      allowed: null,
    },
    {
      name: 'submitReview',
      min: 'SCIENTIST',
      query: 'mutation { submitReview(input: { predictionId: "01missing", label: ALL }) { id } }',
      allowed: 'NOT_FOUND',
    },
    {
      name: 'promoteModel',
      min: 'ADMIN',
      query: 'mutation { promoteModel(version: "v9999") { version } }',
      allowed: 'NOT_FOUND',
    },
    {
      name: 'createApiKey',
      min: 'ADMIN',
      query: 'mutation { createApiKey(input: { name: "roles", role: PARTNER }) { secret } }',
      allowed: null,
    },
    {
      name: 'revokeApiKey',
      min: 'ADMIN',
      query: 'mutation { revokeApiKey(id: "key-missing") { id } }',
      allowed: 'NOT_FOUND',
    },
    { name: 'apiKeys', min: 'ADMIN', query: '{ apiKeys { id } }', allowed: null },
    { name: 'auditLog', min: 'ADMIN', query: '{ auditLog(first: 5) { edges { cursor } } }', allowed: null },
  ];
  const RANK: Record<Role, number> = { PARTNER: 1, SCIENTIST: 2, ADMIN: 3 };
  const cases = OPERATIONS.flatMap((op) =>
    (['PARTNER', 'SCIENTIST', 'ADMIN'] as const).map((role) => ({ ...op, role })),
  );

  it.each(cases)('$role: $name', async ({ role, min, query, allowed }) => {
    const result = await graphqlClient(stack.url, keys[role].secret)(query);
    expectNoStack(result);
    if (RANK[role] < RANK[min]) {
      expect(errorCode(result)).toBe('FORBIDDEN');
      expect(result.errors![0].message).toMatch(new RegExp(`needs the ${min.toLowerCase()} role`));
    } else if (allowed === null) {
      ok(result);
    } else {
      expect(errorCode(result)).toBe(allowed);
    }
  });

  it.each(OPERATIONS)('no key: $name is UNAUTHENTICATED', async ({ query }) => {
    expect(errorCode(await graphqlClient(stack.url)(query))).toBe('UNAUTHENTICATED');
  });

  it('partner cannot take over: a partner creating a key with ADMIN role is FORBIDDEN and creates nothing', async () => {
    const before = await bucketKeys(stack);
    const result = await graphqlClient(
      stack.url,
      keys.PARTNER.secret,
    )('mutation { createApiKey(input: { name: "escalate", role: ADMIN }) { secret } }');
    expect(errorCode(result)).toBe('FORBIDDEN');
    expect(await bucketKeys(stack)).toEqual(before);
  });
});

/** Verifies an S3 SigV4 query-string signature independently of the SDK: true only for this exact URL. */
function presignedSignatureValid(url: URL, secretAccessKey: string, method = 'GET'): boolean {
  const encode = (s: string) =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const query = [...url.searchParams.entries()]
    .filter(([name]) => name !== 'X-Amz-Signature')
    .map(([name, value]) => `${encode(name)}=${encode(value)}`)
    .sort()
    .join('&');
  const signedHeaders = url.searchParams.get('X-Amz-SignedHeaders')!;
  const canonicalRequest = [
    method,
    url.pathname,
    query,
    `host:${url.host}\n`,
    signedHeaders,
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const [, day, region, service] = url.searchParams.get('X-Amz-Credential')!.split('/');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    url.searchParams.get('X-Amz-Date'),
    `${day}/${region}/${service}/aws4_request`,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), region), service), 'aws4_request');
  return (
    createHmac('sha256', signingKey).update(stringToSign).digest('hex') ===
    url.searchParams.get('X-Amz-Signature')
  );
}

describe('partner isolation', () => {
  const PREDICT = 'mutation($input: PredictInput!) { predict(input: $input) { id heatmapUrl imageUrl } }';
  const cell = sampleImages().find((i) => i.label === 'ALL')!;
  let partnerA: Client;
  let partnerB: Client;
  let partnerAId: string;
  let predictionOfA: { id: string; heatmapUrl: string; imageUrl: string };

  beforeAll(async () => {
    const a = await createKey(admin, 'partner A', 'PARTNER');
    const b = await createKey(admin, 'partner B', 'PARTNER');
    partnerAId = a.id;
    partnerA = graphqlClient(stack.url, a.secret);
    partnerB = graphqlClient(stack.url, b.secret);
    predictionOfA = ok(
      await partnerA(PREDICT, { input: { imageBase64: cell.bytes.toString('base64') } }),
    ).predict;
    ok(await partnerB(PREDICT, { input: { imageBase64: cell.bytes.toString('base64') } }));
  });

  it("answers another partner's prediction exactly like an id that never existed", async () => {
    const QUERY = 'query($id: ID!) { prediction(id: $id) { id probabilityAll heatmapUrl } }';
    expect(ok(await partnerA(QUERY, { id: predictionOfA.id })).prediction.id).toBe(predictionOfA.id);

    const foreign = await partnerB(QUERY, { id: predictionOfA.id });
    const neverExisted = await partnerB(QUERY, { id: '01jzzzzzzzzzzzzzzzzzzzzzzz' });
    expect(errorCode(foreign)).toBe('NOT_FOUND');
    expect(foreign.data?.prediction ?? null).toBeNull();
    const shape = (r: GraphqlResult, id: string) => JSON.parse(JSON.stringify(r).split(id).join('<id>'));
    expect(shape(foreign, predictionOfA.id)).toEqual(shape(neverExisted, '01jzzzzzzzzzzzzzzzzzzzzzzz'));

    // Staff may open any partner's prediction by id.
    const scientist = graphqlClient(stack.url, keys.SCIENTIST.secret);
    expect(ok(await scientist(QUERY, { id: predictionOfA.id })).prediction.id).toBe(predictionOfA.id);
  });

  it("lists only the partner's own predictions", async () => {
    const LIST = '{ predictions(first: 100) { edges { node { id } } } }';
    const idsOf = async (client: Client) =>
      ok(await client(LIST)).predictions.edges.map((e: { node: { id: string } }) => e.node.id);
    const ofA = await idsOf(partnerA);
    const ofB = await idsOf(partnerB);
    expect(ofA).toEqual([predictionOfA.id]);
    expect(ofB).toHaveLength(1);
    expect(ofB).not.toContain(predictionOfA.id);
    expect(await idsOf(graphqlClient(stack.url, keys.SCIENTIST.secret))).toEqual(
      expect.arrayContaining([...ofA, ...ofB]),
    );
  });

  it("cannot confirm or predict another partner's upload, nor predict dataset images", async () => {
    const { createImageUpload } = ok(
      await partnerA(
        `mutation { createImageUpload(input: { contentType: "image/bmp", filename: "cell.bmp" }) { uploadId ${UPLOAD_GRANT} } }`,
      ),
    );
    expect((await postUpload(createImageUpload, cell.bytes, 'image/bmp')).status).toBe(204);
    const uploadId = createImageUpload.uploadId;

    expect(
      errorCode(
        await partnerB('mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate } }', {
          id: uploadId,
        }),
      ),
    ).toBe('NOT_FOUND');
    ok(
      await partnerA('mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate } }', {
        id: uploadId,
      }),
    );
    expect(errorCode(await partnerB(PREDICT, { input: { uploadId } }))).toBe('NOT_FOUND');
    expect(ok(await partnerA(PREDICT, { input: { uploadId } })).predict.id).toMatch(/^[0-9a-z]{26}$/);

    const { createDataset } = ok(
      await admin('mutation { createDataset(input: { name: "private" }) { id } }'),
    );
    const { addImage } = ok(
      await admin('mutation($input: AddImageInput!) { addImage(input: $input) { image { id } } }', {
        input: { datasetId: createDataset.id, label: 'ALL', imageBase64: cell.bytes.toString('base64') },
      }),
    );
    expect(
      errorCode(
        await partnerA(PREDICT, { input: { datasetId: createDataset.id, imageId: addImage.image.id } }),
      ),
    ).toBe('NOT_FOUND');
  });

  it('hands out heat-map URLs that expire after the configured short TTL and sign exactly one object', async () => {
    const ttl = stack.services.config.urlTtlSeconds.download;
    expect(ttl).toBeLessThanOrEqual(900);
    const heatmap = new URL(predictionOfA.heatmapUrl);
    expect(heatmap.searchParams.get('X-Amz-Expires')).toBe(String(ttl));
    expect(heatmap.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    expect(heatmap.pathname).toBe(
      `/${stack.bucket}/predictions/${partnerAId}/${predictionOfA.id}.heatmap.png`,
    );

    const response = await fetch(heatmap);
    expect(response.status).toBe(200);
    expect(
      Buffer.from(await response.arrayBuffer())
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG');

    // The signature covers the method, the path and the expiry: the same grant cannot open any other
    // object (the image beside it, a whole prefix) nor be stretched. (Checked here independently of
    // the local S3's own verification, as S3 does it.)
    const secret = stack.s3Credentials.secretAccessKey;
    expect(presignedSignatureValid(heatmap, secret)).toBe(true);
    const image = new URL(heatmap);
    image.pathname = new URL(predictionOfA.imageUrl).pathname;
    expect(presignedSignatureValid(image, secret)).toBe(false);
    const prefix = new URL(heatmap);
    prefix.pathname = `/${stack.bucket}/predictions/${partnerAId}/`;
    expect(presignedSignatureValid(prefix, secret)).toBe(false);
    const stretched = new URL(heatmap);
    stretched.searchParams.set('X-Amz-Expires', '604800');
    expect(presignedSignatureValid(stretched, secret)).toBe(false);
    expect(presignedSignatureValid(heatmap, secret, 'PUT')).toBe(false);
  });
});

describe('audit trail', () => {
  interface AuditNode {
    id: string;
    at: string;
    actor: string;
    action: string;
    target: string;
    before: string | null;
    after: string | null;
  }

  async function auditRecords(): Promise<AuditNode[]> {
    const days = [
      ...new Set([testStarted.toISOString().slice(0, 10), new Date().toISOString().slice(0, 10)]),
    ];
    const out: AuditNode[] = [];
    for (const day of days) {
      let after: string | null = null;
      for (;;) {
        const page: {
          edges: Array<{ node: AuditNode }>;
          pageInfo: { hasNextPage: boolean; endCursor: string };
        } = ok(
          await admin(
            'query($day: String, $after: String) { auditLog(day: $day, first: 100, after: $after) { edges { node { id at actor action target before after } } pageInfo { hasNextPage endCursor } } }',
            { day, after },
          ),
        ).auditLog;
        out.push(...page.edges.map((e) => e.node));
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
      }
    }
    return out;
  }

  it('records promote, review, key changes and image removal with who, what, when, before and after', async () => {
    const scientist = graphqlClient(stack.url, keys.SCIENTIST.secret);
    const adminClient = graphqlClient(stack.url, keys.ADMIN.secret);
    const partner = graphqlClient(stack.url, keys.PARTNER.secret);
    const cell = sampleImages().find((i) => i.label === 'NORMAL')!;

    // promote: a second version replaces the first.
    const previous = ok(await admin('{ productionModel { version } }')).productionModel.version;
    const second = await registerUntrainedModel(stack.services, { seed: 11 });
    ok(
      await adminClient(
        'mutation($v: ID!, $e: ID) { promoteModel(version: $v, expectedCurrentVersion: $e) { version } }',
        { v: second.version, e: previous },
      ),
    );

    // review
    const predicted = ok(
      await partner('mutation($input: PredictInput!) { predict(input: $input) { id label } }', {
        input: { imageBase64: cell.bytes.toString('base64') },
      }),
    ).predict;
    ok(
      await scientist('mutation($input: SubmitReviewInput!) { submitReview(input: $input) { id } }', {
        input: { predictionId: predicted.id, label: 'NORMAL', note: 'normal B-cell' },
      }),
    );

    // image removal
    const { createDataset } = ok(
      await scientist('mutation { createDataset(input: { name: "audited" }) { id } }'),
    );
    const { addImage } = ok(
      await scientist('mutation($input: AddImageInput!) { addImage(input: $input) { image { id } } }', {
        input: {
          datasetId: createDataset.id,
          label: 'NORMAL',
          imageBase64: cell.bytes.toString('base64'),
          filename: cell.name,
        },
      }),
    );
    ok(
      await scientist('mutation($d: ID!, $i: ID!) { removeImage(datasetId: $d, imageId: $i) }', {
        d: createDataset.id,
        i: addImage.image.id,
      }),
    );

    // key create and revoke
    const created = await createKey(adminClient, 'audited key', 'SCIENTIST');
    ok(await adminClient('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: created.id }));
    const finished = Date.now();

    const records = await auditRecords();
    const find = (action: string, target: string) => {
      const matches = records.filter((r) => r.action === action && r.target === target);
      expect(matches).toHaveLength(1);
      const record = matches[0];
      expect(Date.parse(record.at)).toBeGreaterThanOrEqual(testStarted.getTime() - 1000);
      expect(Date.parse(record.at)).toBeLessThanOrEqual(finished + 1000);
      return {
        ...record,
        before: record.before && JSON.parse(record.before),
        after: record.after && JSON.parse(record.after),
      };
    };

    expect(find('model.promote', second.version)).toMatchObject({
      actor: `${keys.ADMIN.id} (admin)`,
      before: { version: previous },
      after: { version: second.version },
    });
    expect(find('prediction.review', predicted.id)).toMatchObject({
      actor: `${keys.SCIENTIST.id} (scientist)`,
      before: { label: predicted.label },
      after: { label: 'NORMAL', note: 'normal B-cell', reviewer: keys.SCIENTIST.id },
    });
    const removal = find('image.remove', `${createDataset.id}/${addImage.image.id}`);
    expect(removal).toMatchObject({ actor: `${keys.SCIENTIST.id} (scientist)`, after: null });
    expect(removal.before.key).toContain(`datasets/${createDataset.id}/images/hem/`);
    expect(find('apiKey.create', created.id)).toMatchObject({
      actor: `${keys.ADMIN.id} (admin)`,
      before: null,
      after: { name: 'audited key', role: 'SCIENTIST' },
    });
    const revoke = find('apiKey.revoke', created.id);
    expect(revoke).toMatchObject({ actor: `${keys.ADMIN.id} (admin)`, before: { revokedAt: null } });
    expect(Date.parse(revoke.after.revokedAt)).toBeGreaterThanOrEqual(testStarted.getTime());

    // Refused attempts leave no record: the log says what was done, not what was tried.
    const count = (await auditRecords()).length;
    expect(
      errorCode(
        await scientist('mutation($v: ID!) { promoteModel(version: $v) { version } }', { v: previous }),
      ),
    ).toBe('FORBIDDEN');
    expect(await auditRecords()).toHaveLength(count);
    // Audit records are immutable objects under audit/, one per event.
    const auditKeys = (await bucketKeys(stack)).filter((k) => k.startsWith('audit/'));
    expect(auditKeys).toHaveLength(count);
  });
});
