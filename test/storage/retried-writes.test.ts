import type { IncomingMessage } from 'node:http';
import { loadConfig } from '../../src/config';
import { createServices, type Services } from '../../src/services';
import type { Caller } from '../../src/services/auth';
import { JsonDocuments } from '../../src/storage/json-documents';
import { layout } from '../../src/storage/layout';
import { createS3ObjectStore } from '../../src/storage/s3-object-store';
import { startLossyProxy, type LossyProxy } from '../helpers/lossy-proxy';
import { startTestS3, type TestS3 } from '../helpers/s3';
import { sampleImages } from '../helpers/sample';
import { registerUntrainedModel } from '../helpers/untrained-model';
import { modelArtifacts } from '../../src/services/model-artifacts';

// Conditional writes whose answer is lost: the write takes effect on the real local S3, the proxy in
// front of it cuts the connection instead of answering, and the SDK retries the same request. The
// retry meets the first attempt's own write; the caller must hear "done", not CONFLICT.

const ADMIN: Caller = { keyId: 'key-admin', role: 'ADMIN', partnerId: 'key-admin' };
let s3: TestS3;
let proxy: LossyProxy;
let services: Services;
let docs: JsonDocuments;

/** A conditional PUT (create-once or compare-and-swap) to a key under `prefix`. */
const conditionalPutTo =
  (prefix: string) =>
  (req: IncomingMessage): boolean =>
    req.method === 'PUT' &&
    (req.url ?? '').startsWith(`/${s3.bucket}/${prefix}`) &&
    (req.headers['if-none-match'] !== undefined || req.headers['if-match'] !== undefined);

const putsTo = (prefix: string) => proxy.forwarded.filter((r) => r.startsWith(`PUT /${s3.bucket}/${prefix}`));

beforeAll(async () => {
  s3 = await startTestS3();
  proxy = await startLossyProxy(s3.endpoint);
  const store = createS3ObjectStore({ ...s3.config, endpoint: proxy.endpoint });
  docs = new JsonDocuments(store);
  services = createServices(
    loadConfig({ LYMPHOSCOPE_STAGE: 'test', LYMPHOSCOPE_BUCKET: s3.bucket, LYMPHOSCOPE_LOG_LEVEL: 'silent' }),
    {
      store,
      registration: modelArtifacts,
      dispatcher: { dispatch: async () => undefined },
    },
  );
});
afterAll(async () => {
  await proxy.stop();
  await s3.stop();
});

// Both paths a PUT can take: without the SDK's client (the default) and through it (LYMPHOSCOPE_S3_REQUESTS=sdk).
describe.each(['direct', 'sdk'] as const)('a create-once write whose answer is lost (%s)', (requests) => {
  let pathDocs: JsonDocuments;
  beforeAll(() => {
    pathDocs = new JsonDocuments(createS3ObjectStore({ ...s3.config, endpoint: proxy.endpoint, requests }));
  });

  it('is reported done, stored once, and a real second create still conflicts without naming the key', async () => {
    proxy.dropNextAnswer(conditionalPutTo(`records/${requests}/once.json`));
    const dropped = proxy.dropped;
    const etag = await pathDocs.create(`records/${requests}/once.json`, { by: 'first' });
    expect(proxy.dropped).toBe(dropped + 1);
    // The same request went twice: the first took effect, the retry met it.
    expect(putsTo(`records/${requests}/once.json`)).toHaveLength(2);
    expect(await pathDocs.get(`records/${requests}/once.json`)).toEqual({ value: { by: 'first' }, etag });

    const second = await pathDocs
      .create(`records/${requests}/once.json`, { by: 'second' })
      .catch((e: Error) => e);
    expect(second).toMatchObject({ code: 'CONFLICT' });
    expect((second as Error).message).not.toMatch(/records|once\.json/);
    expect(JSON.stringify(second)).not.toMatch(/records\//);
  });

  it('and a compare-and-swap whose answer is lost is reported done too', async () => {
    const etag = await pathDocs.create(`records/${requests}/cas.json`, { n: 1 });
    proxy.dropNextAnswer(conditionalPutTo(`records/${requests}/cas.json`));
    const dropped = proxy.dropped;
    const next = await pathDocs.replace(`records/${requests}/cas.json`, { n: 2 }, etag);
    expect(proxy.dropped).toBe(dropped + 1);
    expect(await pathDocs.get(`records/${requests}/cas.json`)).toEqual({ value: { n: 2 }, etag: next });
    // A stale version is still refused.
    await expect(pathDocs.replace(`records/${requests}/cas.json`, { n: 3 }, etag)).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });
});

describe('services', () => {
  let version: string;
  beforeAll(async () => {
    version = (await registerUntrainedModel(services, { notes: 'retried-writes test' })).version;
  }, 120_000);

  it('promote: a promote whose alias write lost its answer took effect, is reported so, and is audited', async () => {
    proxy.dropNextAnswer(conditionalPutTo(layout.productionAlias()));
    const dropped = proxy.dropped;
    const card = await services.models.promote(ADMIN, version, null);
    expect(proxy.dropped).toBe(dropped + 1);
    expect(card.version).toBe(version);
    expect(await services.models.productionVersion()).toBe(version);

    const day = new Date().toISOString().slice(0, 10);
    const audit = (await services.audit.list(day, 100)).items.map((i) => i.node);
    const promotes = audit.filter((r) => r.action === 'model.promote' && r.target === version);
    expect(promotes).toHaveLength(1);
    expect(promotes[0]).toMatchObject({ outcome: 'applied', after: { version } });
    const alias = await docs.get<{ auditId?: string }>(layout.productionAlias());
    expect(alias!.value.auditId).toBe(promotes[0].id);
  });

  it('createApiKey: a key whose record write lost its answer works, is listed (no orphan) and audited', async () => {
    proxy.dropNextAnswer(conditionalPutTo('keys/by-hash/'));
    const dropped = proxy.dropped;
    const { record, secret } = await services.auth.create(ADMIN, 'lab app', 'PARTNER');
    expect(proxy.dropped).toBe(dropped + 1);
    expect(await services.auth.authenticate(secret)).toMatchObject({ keyId: record.id, role: 'PARTNER' });
    expect((await services.auth.list()).map((k) => k.id)).toContain(record.id);
    const day = new Date().toISOString().slice(0, 10);
    const audit = (await services.audit.list(day, 100)).items.map((i) => i.node);
    expect(audit.filter((r) => r.action === 'apiKey.create' && r.target === record.id)).toEqual([
      expect.objectContaining({ outcome: 'applied' }),
    ]);
  });

  it('predict: a prediction whose record write lost its answer is returned and readable', async () => {
    const partner: Caller = { keyId: 'key-partner', role: 'PARTNER', partnerId: 'key-partner' };
    proxy.dropNextAnswer(
      (req) =>
        conditionalPutTo('predictions/key-partner/')(req) && /\/[^/.]+\.json(\?|$)/.test(req.url ?? ''),
    );
    const dropped = proxy.dropped;
    const cell = sampleImages()[0];
    const prediction = await services.predictions.predict(partner, {
      imageBase64: cell.bytes.toString('base64'),
      explain: false,
    });
    expect(proxy.dropped).toBe(dropped + 1);
    expect(putsTo(`predictions/key-partner/${prediction.id}.json`)).toHaveLength(2);
    expect(await docs.get(layout.prediction('key-partner', prediction.id))).toMatchObject({
      value: { id: prediction.id, modelVersion: version },
    });
  });
});
