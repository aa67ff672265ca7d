import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { ok } from '../helpers/graphql';
import {
  errorCode,
  importSample,
  startE2eStack,
  startJob,
  watchJob,
  type E2eStack,
  type JobView,
} from '../helpers/e2e-stack';
import type { SampleImage } from '../helpers/sample';

const CARD = `version createdAt architecture inputSize trainedOnBackend threshold reviewLow reviewHigh bestEpoch isProduction notes
  config { architecture inputSize epochs batchSize learningRate patience classBalance augment seed validationFraction testFraction }
  testMetrics { n accuracy balancedAccuracy sensitivity specificity precision f1 weightedF1 rocAuc prAuc brier ece majorityBaselineAccuracy
    truePositives falsePositives trueNegatives falseNegatives threshold }
  validationMetrics { n threshold }
  history { epoch loss accuracy valLoss valAccuracy seconds }
  lineage { jobId datasetId snapshotId parentVersion testSplitId }
  rocCurve { x y threshold }`;

/**
 * A 24-bit BMP decoded by hand, as a partner app with no Lymphoscope code would: rows bottom-up, BGR,
 * padded to 4 bytes. Only what the C-NMC files use.
 */
function decodeBmp24(bytes: Buffer): { width: number; height: number; rgb: Buffer } {
  const offset = bytes.readUInt32LE(10);
  const width = bytes.readInt32LE(18);
  const height = bytes.readInt32LE(22);
  if (bytes.readUInt16LE(28) !== 24) throw new Error('expected a 24-bit BMP');
  const rows = Math.abs(height);
  const stride = Math.ceil((width * 3) / 4) * 4;
  const rgb = Buffer.alloc(width * rows * 3);
  for (let y = 0; y < rows; y++) {
    const source = offset + (height > 0 ? rows - 1 - y : y) * stride;
    for (let x = 0; x < width; x++) {
      rgb[(y * width + x) * 3] = bytes[source + x * 3 + 2];
      rgb[(y * width + x) * 3 + 1] = bytes[source + x * 3 + 1];
      rgb[(y * width + x) * 3 + 2] = bytes[source + x * 3];
    }
  }
  return { width, height: rows, rgb };
}

/** Model versions over real HTTP: the registry, comparisons, the production alias and the TF.js artifacts. */
describe('model versions end to end', () => {
  let e2e: E2eStack;
  let datasetId: string;
  let images: SampleImage[];
  let jobA: JobView;
  let jobB: JobView;
  let jobOtherSplit: JobView;

  beforeAll(async () => {
    e2e = await startE2eStack('models');
    ({ datasetId, images } = await importSample(e2e));
    // A and B differ in learning rate only: same dataset and seed, so the same frozen split.
    const base = {
      datasetId,
      architecture: 'VANILLA',
      inputSize: 32,
      epochs: 3,
      batchSize: 16,
      patience: 3,
      seed: 42,
    };
    const started = [
      await startJob(e2e, { ...base, learningRate: 0.001 }),
      await startJob(e2e, { ...base, learningRate: 0.003 }),
      // The network alone (no fusion): what probabilityAll is then, is checked below.
      await startJob(e2e, { ...base, seed: 7, epochs: 2, fusion: 'NONE' }),
    ];
    [jobA, jobB, jobOtherSplit] = await Promise.all(
      started.map((job) => watchJob(e2e, job.id, (j) => j.status === 'SUCCEEDED', 240_000)),
    );
  }, 300_000);

  afterAll(() => e2e?.stop());

  const card = async (version: string) =>
    ok(await e2e.gql(`query($v: ID!) { modelVersion(version: $v) { ${CARD} } }`, { v: version }))
      .modelVersion;

  it('pages through versions newest first', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      type Page = {
        modelVersions: {
          edges: Array<{ node: { version: string } }>;
          pageInfo: { hasNextPage: boolean; endCursor: string };
        };
      };
      const { modelVersions }: Page = ok(
        await e2e.gql<Page>(
          'query($after: String) { modelVersions(first: 1, after: $after) { edges { cursor node { version } } pageInfo { hasNextPage endCursor } } }',
          { after },
        ),
      );
      expect(modelVersions.edges).toHaveLength(1);
      seen.push(modelVersions.edges[0].node.version);
      if (!modelVersions.pageInfo.hasNextPage) break;
      after = modelVersions.pageInfo.endCursor;
    }
    expect(seen).toHaveLength(3);
    expect(new Set(seen)).toEqual(
      new Set([jobA.modelVersion, jobB.modelVersion, jobOtherSplit.modelVersion]),
    );
    expect(seen).toEqual([...seen].sort().reverse());
    const bad = await e2e.gql('{ modelVersions(first: 0) { edges { cursor } } }');
    expect(errorCode(bad)).toBe('BAD_USER_INPUT');
    const tooMany = await e2e.gql('{ modelVersions(first: 1000) { edges { cursor } } }');
    expect(errorCode(tooMany)).toBe('BAD_USER_INPUT');
  });

  it('describes a version with its card: config, held-out metrics, history and lineage', async () => {
    const a = await card(jobA.modelVersion!);
    expect(a).toMatchObject({
      version: jobA.modelVersion,
      architecture: 'VANILLA',
      inputSize: 32,
      isProduction: false,
      config: {
        architecture: 'VANILLA',
        inputSize: 32,
        epochs: 3,
        batchSize: 16,
        learningRate: 0.001,
        seed: 42,
        patience: 3,
      },
      lineage: { jobId: jobA.id, datasetId, snapshotId: expect.any(String), parentVersion: null },
    });
    expect(a.trainedOnBackend).toMatch(/^(wasm|tensorflow)$/);
    expect(Date.parse(a.createdAt)).toBeGreaterThan(Date.now() - 10 * 60_000);
    const m = a.testMetrics;
    expect(m.n).toBe(jobA.split.test);
    expect(m.truePositives + m.falsePositives + m.trueNegatives + m.falseNegatives).toBe(m.n);
    expect(m.accuracy).toBeCloseTo((m.truePositives + m.trueNegatives) / m.n, 10);
    expect(m.threshold).toBe(a.threshold);
    expect(m.majorityBaselineAccuracy).toBeGreaterThanOrEqual(0.5);
    expect(a.validationMetrics.n).toBe(jobA.split.validation);
    expect(a.reviewLow).toBeLessThanOrEqual(a.reviewHigh);
    expect(a.reviewHigh).toBe(a.threshold);
    expect(a.history.map((h: { epoch: number }) => h.epoch)).toEqual(jobA.history.map((h) => h.epoch));
    expect(a.history.map((h: { loss: number }) => h.loss)).toEqual(jobA.history.map((h) => h.loss));
    expect(a.bestEpoch).toBeGreaterThanOrEqual(1);
    expect(a.bestEpoch).toBeLessThanOrEqual(3);
    expect(a.rocCurve.length).toBeGreaterThanOrEqual(2);
    for (const p of a.rocCurve) {
      expect(p.x).toBeGreaterThanOrEqual(0);
      expect(p.y).toBeLessThanOrEqual(1);
    }
    expect(ok(await e2e.gql('{ modelVersion(version: "v9999") { version } }')).modelVersion).toBeNull();
  });

  it('compares two versions on the same test split with deltas b - a, and refuses deltas across splits', async () => {
    const [a, b] = [await card(jobA.modelVersion!), await card(jobB.modelVersion!)];
    const { compareModels } = ok(
      await e2e.gql(
        'query($a: ID!, $b: ID!) { compareModels(a: $a, b: $b) { sameTestSplit a { version } b { version } deltas { metric a b delta } } }',
        {
          a: a.version,
          b: b.version,
        },
      ),
    );
    expect(compareModels.sameTestSplit).toBe(true);
    expect(a.lineage.testSplitId).toBe(b.lineage.testSplitId);
    expect(compareModels.a.version).toBe(a.version);
    const byMetric = Object.fromEntries(compareModels.deltas.map((d: { metric: string }) => [d.metric, d]));
    for (const metric of ['accuracy', 'balancedAccuracy', 'brier', 'ece']) {
      expect(byMetric[metric]).toEqual({
        metric,
        a: a.testMetrics[metric],
        b: b.testMetrics[metric],
        delta: expect.any(Number),
      });
      expect(byMetric[metric].delta).toBeCloseTo(b.testMetrics[metric] - a.testMetrics[metric], 12);
    }

    const other = ok(
      await e2e.gql(
        'query($a: ID!, $b: ID!) { compareModels(a: $a, b: $b) { sameTestSplit deltas { metric a b delta } } }',
        {
          a: a.version,
          b: jobOtherSplit.modelVersion,
        },
      ),
    ).compareModels;
    expect(other.sameTestSplit).toBe(false);
    expect(other.deltas.every((d: { delta: number | null }) => d.delta === null)).toBe(true);
    expect(other.deltas.find((d: { metric: string }) => d.metric === 'accuracy').a).toBe(
      a.testMetrics.accuracy,
    );

    expect(errorCode(await e2e.gql('{ compareModels(a: "v0001", b: "v9999") { sameTestSplit } }'))).toBe(
      'NOT_FOUND',
    );
  });

  it('promotes with compare-and-swap on the production alias: a stale expectation is a CONFLICT', async () => {
    const PROMOTE =
      'mutation($v: ID!, $e: ID) { promoteModel(version: $v, expectedCurrentVersion: $e) { version isProduction } }';
    expect(ok(await e2e.gql('{ productionModel { version } }')).productionModel).toBeNull();

    expect(ok(await e2e.gql(PROMOTE, { v: jobA.modelVersion })).promoteModel).toEqual({
      version: jobA.modelVersion,
      isProduction: true,
    });
    const stale = await e2e.gql(PROMOTE, { v: jobB.modelVersion, e: jobB.modelVersion });
    expect(errorCode(stale)).toBe('CONFLICT');
    expect(stale.errors![0].extensions).toMatchObject({ currentVersion: jobA.modelVersion });
    expect(ok(await e2e.gql('{ productionModel { version } }')).productionModel.version).toBe(
      jobA.modelVersion,
    );

    const promoted = ok(await e2e.gql(PROMOTE, { v: jobB.modelVersion, e: jobA.modelVersion })).promoteModel;
    expect(promoted).toEqual({ version: jobB.modelVersion, isProduction: true });
    const after = ok(
      await e2e.gql('{ productionModel { version isProduction } health { productionModelVersion } }'),
    );
    expect(after.productionModel).toEqual({ version: jobB.modelVersion, isProduction: true });
    expect(after.health.productionModelVersion).toBe(jobB.modelVersion);
    expect((await card(jobA.modelVersion!)).isProduction).toBe(false);

    expect(errorCode(await e2e.gql(PROMOTE, { v: 'v9999' }))).toBe('NOT_FOUND');
    const { auditLog } = ok(
      await e2e.gql('{ auditLog(first: 100) { edges { node { action target before after actor } } } }'),
    );
    const promotes = auditLog.edges
      .map((e: { node: unknown }) => e.node)
      .filter((n: { action: string }) => n.action === 'model.promote');
    expect(promotes.map((p: { target: string }) => p.target)).toEqual([jobA.modelVersion, jobB.modelVersion]);
    expect(JSON.parse(promotes[1].before)).toEqual({ version: jobA.modelVersion });
  });

  it('serves its TF.js artifacts, which give a partner app the same answers as the API', async () => {
    const version = jobB.modelVersion!;
    const { modelVersion } = ok(
      await e2e.gql(
        'query($v: ID!) { modelVersion(version: $v) { inputSize testTimeAugmentation fusion artifacts { modelJsonUrl weightsUrl preprocessing expiresAt } } }',
        {
          v: version,
        },
      ),
    );
    const { artifacts, inputSize, testTimeAugmentation } = modelVersion;
    // The default recipe serves the mean over the 8 views, which a client computes from the artifacts too.
    expect(testTimeAugmentation).toBe(true);
    // ...and fuses it with the cell's morphology and texture, which the artifacts do not carry: a partner app
    // reproduces networkProbability from them, and reads probabilityAll from the API.
    expect(modelVersion.fusion).toBe('TEXTURE_BLEND');
    expect(Date.parse(artifacts.expiresAt)).toBeGreaterThan(Date.now());
    expect(artifacts.preprocessing).toMatch(/lanczos/i);
    const [modelJsonResponse, weightsResponse] = await Promise.all([
      fetch(artifacts.modelJsonUrl),
      fetch(artifacts.weightsUrl),
    ]);
    expect(modelJsonResponse.status).toBe(200);
    expect(weightsResponse.status).toBe(200);
    // Parsed here rather than with response.json(): under jest, objects built by fetch come from another
    // realm, and tfjs-layers cannot walk their arrays.
    const modelJson = JSON.parse(await modelJsonResponse.text());
    const weights = await weightsResponse.arrayBuffer();
    // As a partner app starts TF.js: the API serving this version on onnxruntime never started it here.
    await tf.ready();
    const model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: modelJson.modelTopology,
        weightSpecs: modelJson.weightsManifest.flatMap(
          (group: { weights: tf.io.WeightsManifestEntry[] }) => group.weights,
        ),
        weightData: weights,
      }),
    );
    try {
      expect(model.inputs[0].shape).toEqual([null, inputSize, inputSize, 3]);
      // Cells of both classes, preprocessed as the `preprocessing` string says, with no Lymphoscope code.
      for (const image of [images[0], images[20], images[40], images[62]]) {
        const { width, height, rgb } = decodeBmp24(image.bytes);
        const resized = await sharp(rgb, { raw: { width, height, channels: 3 } })
          .resize(inputSize, inputSize, { fit: 'fill', kernel: 'lanczos3' })
          .raw()
          .toBuffer();
        const local = tf.tidy(() => {
          let view = tf.tensor4d(
            Float32Array.from(resized, (v) => v / 255),
            [1, inputSize, inputSize, 3],
          );
          // The 8 flips and quarter turns: four turns of the cell and four of its mirror image.
          const views: tf.Tensor4D[] = [];
          for (const mirrored of [view, tf.reverse(view, 2)]) {
            view = mirrored;
            for (let turn = 0; turn < 4; turn++) {
              views.push(view);
              view = tf.reverse(tf.transpose(view, [0, 2, 1, 3]), 2);
            }
          }
          return tf.mean(model.predict(tf.concat(views)) as tf.Tensor).dataSync()[0];
        });
        const { predict } = ok(
          await e2e.gql(
            'mutation($input: PredictInput!) { predict(input: $input) { probabilityAll networkProbability modelVersion } }',
            {
              input: { imageBase64: image.bytes.toString('base64'), modelVersion: version, explain: false },
            },
          ),
        );
        expect(predict.modelVersion).toBe(version);
        expect(Math.abs(local - predict.networkProbability)).toBeLessThan(1e-4);
      }
    } finally {
      model.dispose();
    }
  });

  it('without fusion makes the call on the network probability, Platt-scaled when the card says so', async () => {
    const version = jobOtherSplit.modelVersion!;
    const { modelVersion } = ok(
      await e2e.gql('query($v: ID!) { modelVersion(version: $v) { fusion } }', { v: version }),
    );
    expect(modelVersion.fusion).toBe('NONE');
    for (const image of [images[0], images[40]]) {
      const { predict } = ok(
        await e2e.gql(
          'mutation($input: PredictInput!) { predict(input: $input) { probabilityAll networkProbability } }',
          { input: { imageBase64: image.bytes.toString('base64'), modelVersion: version, explain: false } },
        ),
      );
      {
        const { modelVersion: card } = ok(
          await e2e.gql('query($v: ID!) { modelVersion(version: $v) { calibration { slope intercept } } }', {
            v: version,
          }),
        );
        const q = Math.min(Math.max(predict.networkProbability, 1e-6), 1 - 1e-6);
        const expected = card.calibration
          ? 1 / (1 + Math.exp(-(card.calibration.slope * Math.log(q / (1 - q)) + card.calibration.intercept)))
          : predict.networkProbability;
        expect(predict.probabilityAll).toBeCloseTo(expected, 9);
      }
    }
  });
});
