import type { ModelArtifacts } from '../../src/services/model-artifacts';
import { type NewModelCard } from '../../src/services/models';
import { registryOver } from '../helpers/model-registry';
import { startTestS3, type TestS3 } from '../helpers/s3';

/**
 * Registration's artifacts are given only where models are registered (the API's bundle leaves vega and
 * the ONNX writer out; test/packaging/package.test.ts checks the bundle). What they make when given:
 * test/services/model-charts.test.ts (charts) and models-onnx.test.ts (the ONNX twin).
 */
describe('model artifacts', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startTestS3();
  });
  afterAll(() => s3?.stop());

  const registry = (artifacts: ModelArtifacts | null) => registryOver(s3.store, artifacts);

  it('are required to register: a registry without them refuses before writing anything', async () => {
    const before = await s3.listKeys();
    await expect(
      registry(null).register({ modelJson: {}, weights: Buffer.alloc(8) }, {} as NewModelCard),
    ).rejects.toThrow('This process does not register models: createServices was not given `registration`.');
    expect(await s3.listKeys()).toEqual(before);
  });

  it('are what a registry calls for the charts and the ONNX twin', async () => {
    const calls: string[] = [];
    const counting = {
      renderCharts: async () => (calls.push('charts'), new Map([['roc' as const, '<svg/>']])),
      exportOnnx: async () => {
        calls.push('onnx');
        throw new Error('no exporter here');
      },
    };
    const card = await registry(counting).register({ modelJson: {}, weights: Buffer.alloc(8) }, {
      lineage: { jobId: null },
    } as NewModelCard);
    expect(calls).toEqual(['charts', 'onnx']);
    expect(card.charts).toEqual(['roc']);
    const keys = await s3.listKeys();
    expect(keys).toContain(`models/${card.version}/charts/roc.svg`);
    // An export that fails leaves the version to TF.js: no model.onnx.
    expect(keys).not.toContain(`models/${card.version}/model.onnx`);
  });
});
