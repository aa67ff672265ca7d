import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalStack, type LocalStack } from '../../src/local/stack';
import { graphqlClient, ok, waitFor } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import { postUpload, UPLOAD_GRANT } from '../helpers/upload';

const ADMIN_KEY = 'lsk_e2e_first_slice_admin_key_0123456789';

describe('the first vertical slice over real HTTP', () => {
  let stack: LocalStack;
  let dir: string;
  let gql: ReturnType<typeof graphqlClient>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-e2e-'));
    stack = await startLocalStack({
      dataDir: dir,
      adminKey: ADMIN_KEY,
      demoModel: false,
      logLevel: 'warn',
      workerRetryDelayMs: 200,
    });
    gql = graphqlClient(stack.url, ADMIN_KEY);
  });

  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('uploads real cells, trains a model, predicts and reads the prediction back from S3', async () => {
    const health = ok(await gql('{ health { status storageReachable mlBackend } }'));
    expect(health.health).toMatchObject({ status: 'ok', storageReachable: true });

    const { createDataset } = ok(
      await gql('mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id name } }', {
        input: { name: 'C-NMC sample' },
      }),
    );
    const images = sampleImages();
    // Most inline, every fifth through a presigned form with a real HTTP POST.
    for (const [i, image] of images.entries()) {
      if (i % 5 === 0) {
        const { createImageUpload } = ok(
          await gql(
            `mutation($input: CreateImageUploadInput!) { createImageUpload(input: $input) { uploadId ${UPLOAD_GRANT} } }`,
            {
              input: {
                datasetId: createDataset.id,
                label: image.label,
                filename: image.name,
                contentType: 'image/bmp',
              },
            },
          ),
        );
        const post = await postUpload(createImageUpload, image.bytes, 'image/bmp', image.name);
        expect(post.status).toBe(204);
        const confirmed = ok(
          await gql(
            'mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate image { id subjectId label } } }',
            {
              id: createImageUpload.uploadId,
            },
          ),
        );
        expect(confirmed.confirmImageUpload.duplicate).toBe(false);
      } else {
        const added = ok(
          await gql(
            'mutation($input: AddImageInput!) { addImage(input: $input) { duplicate image { id subjectId width height } } }',
            {
              input: {
                datasetId: createDataset.id,
                label: image.label,
                filename: image.name,
                imageBase64: image.bytes.toString('base64'),
              },
            },
          ),
        );
        expect(added.addImage.image).toMatchObject({ width: 450, height: 450 });
      }
    }
    const { dataset } = ok(
      await gql(
        'query($id: ID!) { dataset(id: $id) { imageCount labelCounts { label count } subjectCounts { subjectId count } } }',
        {
          id: createDataset.id,
        },
      ),
    );
    expect(dataset.imageCount).toBe(images.length);
    expect(dataset.labelCounts).toEqual([
      { label: 'ALL', count: images.filter((i) => i.label === 'ALL').length },
      { label: 'NORMAL', count: images.filter((i) => i.label === 'NORMAL').length },
    ]);
    expect(dataset.subjectCounts.length).toBeGreaterThan(5);

    const { startTraining } = ok(
      await gql(
        'mutation($input: StartTrainingInput!) { startTraining(input: $input) { id status split { train validation test } } }',
        {
          input: {
            datasetId: createDataset.id,
            architecture: 'VANILLA',
            inputSize: 48,
            epochs: 2,
            batchSize: 16,
            patience: 2,
          },
        },
      ),
    );
    expect(startTraining.status).toBe('QUEUED');
    const job = await waitFor(
      'training to finish',
      async () => {
        const { trainingJob } = ok(
          await gql(
            'query($id: ID!) { trainingJob(id: $id) { status epoch progress modelVersion error history { epoch loss valLoss } } }',
            {
              id: startTraining.id,
            },
          ),
        );
        return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(trainingJob.status) ? trainingJob : null;
      },
      240_000,
      1000,
    );
    expect(job).toMatchObject({ status: 'SUCCEEDED', epoch: 2, progress: 1, error: null });
    expect(job.history).toHaveLength(2);

    const { modelVersion } = ok(
      await gql(
        'query($v: ID!) { modelVersion(version: $v) { version architecture trainedOnBackend threshold testMetrics { n accuracy rocAuc majorityBaselineAccuracy } } }',
        {
          v: job.modelVersion,
        },
      ),
    );
    expect(modelVersion.architecture).toBe('VANILLA');
    expect(modelVersion.testMetrics.n).toBe(startTraining.split.test);
    expect(modelVersion.testMetrics.accuracy).toBeGreaterThanOrEqual(0);

    const promoted = ok(
      await gql('mutation($v: ID!) { promoteModel(version: $v) { version isProduction } }', {
        v: job.modelVersion,
      }),
    );
    expect(promoted.promoteModel.isProduction).toBe(true);

    const cell = images.find((i) => i.label === 'ALL')!;
    const { predict } = ok(
      await gql(
        'mutation($input: PredictInput!) { predict(input: $input) { id label probabilityAll threshold needsReview modelVersion heatmapUrl morphology { areaPx solidity } } }',
        {
          input: { imageBase64: cell.bytes.toString('base64') },
        },
      ),
    );
    expect(predict.modelVersion).toBe(job.modelVersion);
    expect(predict.probabilityAll).toBeGreaterThanOrEqual(0);
    expect(predict.probabilityAll).toBeLessThanOrEqual(1);
    expect(['ALL', 'NORMAL']).toContain(predict.label);
    expect(predict.label).toBe(predict.probabilityAll >= predict.threshold ? 'ALL' : 'NORMAL');
    expect(predict.morphology.areaPx).toBeGreaterThan(1000);

    const heatmap = await fetch(predict.heatmapUrl);
    expect(heatmap.status).toBe(200);
    expect(
      Buffer.from(await heatmap.arrayBuffer())
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG');

    const { prediction } = ok(
      await gql('query($id: ID!) { prediction(id: $id) { id probabilityAll modelVersion } }', {
        id: predict.id,
      }),
    );
    expect(prediction).toEqual({
      id: predict.id,
      probabilityAll: predict.probabilityAll,
      modelVersion: job.modelVersion,
    });

    // The records are real S3 objects.
    const keys = (await stack.services.store.listAll('')).map((o) => o.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        `models/${job.modelVersion}/model.json`,
        `models/${job.modelVersion}/weights.bin`,
        `models/${job.modelVersion}/card.json`,
        `jobs/${startTraining.id}/job.json`,
      ]),
    );
    expect(keys.some((k) => k.startsWith('predictions/') && k.endsWith(`${predict.id}.json`))).toBe(true);
    expect(keys.filter((k) => k.startsWith(`datasets/${createDataset.id}/images/`))).toHaveLength(
      images.length,
    );
  }, 400_000);
});
