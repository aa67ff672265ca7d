import { createHash } from 'node:crypto';
import { graphqlClient, ok } from '../helpers/graphql';
import { importSample, startE2eStack, type E2eStack } from '../helpers/e2e-stack';
import type { SampleImage } from '../helpers/sample';
import { postUpload, UPLOAD_GRANT } from '../helpers/upload';

const BATCH =
  'mutation($inputs: [PredictInput!]!) { predictBatch(inputs: $inputs) { label probabilityAll } }';

/**
 * A full batch of 32 real C-NMC cells (450x450 BMPs, about 600 KB each) fits in one request when the
 * items refer to images already stored (dataset image ids, confirmed upload ids) instead of carrying them
 * as base64; sent inline, the same cells are refused with a 413 that names the limit (docs/API.md).
 */
describe('predictBatch by reference', () => {
  let e2e: E2eStack;
  let datasetId: string;
  let images: SampleImage[];
  let imageIds: Array<{ id: string; sha256: string }>;

  beforeAll(async () => {
    e2e = await startE2eStack('batch-ref', { demoModel: true });
    ({ datasetId, images } = await importSample(e2e));
    const { dataset } = ok(
      await e2e.gql(
        'query($id: ID!) { dataset(id: $id) { images(first: 32) { edges { node { id sha256 } } } } }',
        {
          id: datasetId,
        },
      ),
    );
    imageIds = dataset.images.edges.map((e: { node: { id: string; sha256: string } }) => e.node);
  }, 120_000);

  afterAll(async () => {
    await e2e?.stop();
  });

  const post = async (body: string, key: string) => {
    const response = await fetch(e2e.stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body,
    });
    return { status: response.status, json: JSON.parse(await response.text()) };
  };

  it('classifies 32 dataset images in one small request, as each alone would', async () => {
    expect(imageIds).toHaveLength(32);
    const body = JSON.stringify({
      query: BATCH,
      variables: { inputs: imageIds.map(({ id }) => ({ datasetId, imageId: id, explain: false })) },
    });
    expect(body.length).toBeLessThan(8 * 1024);
    const { status, json } = await post(body, e2e.adminKey);
    expect(status).toBe(200);
    const predictions = ok<{ predictBatch: Array<{ label: string; probabilityAll: number }> }>(
      json,
    ).predictBatch;
    expect(predictions).toHaveLength(32);
    // The same cell sent inline gets the same answer: a reference reads the very bytes that were stored.
    // Found by its hash: file names are not stored (they can carry patient identifiers).
    const first = images.find(
      (image) => createHash('sha256').update(image.bytes).digest('hex') === imageIds[0].sha256,
    )!;
    expect(first).toBeDefined();
    const { predict } = ok(
      await e2e.gql('mutation($i: PredictInput!) { predict(input: $i) { probabilityAll } }', {
        i: { imageBase64: first.bytes.toString('base64'), explain: false },
      }),
    );
    expect(predictions[0].probabilityAll).toBe(predict.probabilityAll);
  });

  it('lets a partner batch its own confirmed uploads', async () => {
    const { createApiKey } = ok(
      await e2e.gql('mutation { createApiKey(input: { name: "batch partner", role: PARTNER }) { secret } }'),
    );
    const partner = graphqlClient(e2e.stack.url, createApiKey.secret);
    const uploadIds: string[] = [];
    for (const image of images.slice(0, 3)) {
      const { createImageUpload: upload } = ok(
        await partner(
          `mutation($i: CreateImageUploadInput!) { createImageUpload(input: $i) { uploadId ${UPLOAD_GRANT} } }`,
          { i: { contentType: 'image/bmp', filename: image.name } },
        ),
      );
      const stored = await postUpload(upload, image.bytes, 'image/bmp', image.name);
      expect(stored.status).toBe(204);
      ok(
        await partner('mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate } }', {
          id: upload.uploadId,
        }),
      );
      uploadIds.push(upload.uploadId);
    }
    const { predictBatch } = ok(
      await partner(BATCH, { inputs: uploadIds.map((uploadId) => ({ uploadId, explain: false })) }),
    );
    expect(predictBatch).toHaveLength(3);
    for (const p of predictBatch) expect(p.probabilityAll).toBeGreaterThanOrEqual(0);
  });

  it('refuses the same cells inline with a 413 that carries the limit, and stores nothing', async () => {
    const before = (await e2e.stack.services.store.listAll('predictions/')).length;
    const inline = (n: number) =>
      JSON.stringify({
        query: BATCH,
        variables: {
          inputs: images.slice(0, n).map((image) => ({ imageBase64: image.bytes.toString('base64') })),
        },
      });
    // 8 cells: about 6.5 MB of JSON, over the handler's 6 MiB (Lambda's own request limit).
    const eight = await post(inline(8), e2e.adminKey);
    expect(eight.status).toBe(413);
    expect(eight.json.errors[0].extensions).toEqual({ code: 'PAYLOAD_TOO_LARGE', limit: 6 * 1024 * 1024 });
    // 32 cells: about 26 MB, over the 10 MiB that API Gateway (and the local HTTP server) accept at all.
    const all = await post(inline(32), e2e.adminKey);
    expect(all.status).toBe(413);
    expect(all.json.errors[0].extensions).toEqual({ code: 'PAYLOAD_TOO_LARGE', limit: 10 * 1024 * 1024 });
    expect((await e2e.stack.services.store.listAll('predictions/')).length).toBe(before);
  });
});
