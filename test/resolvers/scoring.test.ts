import type { ModelCard } from '../../src/services/models';
import { layout } from '../../src/storage/layout';
import { sampleImages } from '../helpers/sample';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';

/**
 * The bulk scoring resolvers: staff only, the source and chunking checks, and the plan event dispatched
 * (recorded, not run: test/e2e/scoring.test.ts runs the workers).
 */
describe('scoring resolvers', () => {
  let h: ResolverHarness;
  const START = `mutation($input: StartScoringInput!) {
    startScoring(input: $input) { id status prefix datasetId modelVersion chunkSize concurrency completedChunks }
  }`;

  beforeAll(async () => {
    h = await startResolverHarness();
    await h.s3.store.put(`imports/archive/${sampleImages()[0].name}`, sampleImages()[0].bytes);
    // A version's card is all startScoring reads of it; the workers would load its network.
    await h.services.docs.create(layout.modelFile('v0001', 'card.json'), { version: 'v0001' } as ModelCard);
  });
  afterAll(() => h?.stop());

  it('starts a job on a folder for scientists and dispatches its plan', async () => {
    const result = await h.run(h.keys.SCIENTIST, START, {
      input: { prefix: 'imports/archive', modelVersion: 'v0001', chunkSize: 50 },
    });
    expect(result.errors).toEqual([]);
    const job = result.data!.startScoring;
    expect(job).toMatchObject({
      status: 'QUEUED',
      prefix: 'imports/archive/',
      datasetId: null,
      modelVersion: 'v0001',
      chunkSize: 50,
      completedChunks: 0,
    });
    expect(h.dispatched.scoring).toContainEqual({ jobId: job.id });
    const read = await h.run(h.keys.SCIENTIST, 'query($id: ID!) { scoringJob(id: $id) { id status } }', {
      id: job.id,
    });
    expect(read.data!.scoringJob).toEqual({ id: job.id, status: 'QUEUED' });
  });

  it('refuses partners, sources inside our own data, empty folders and bad chunking, dispatching nothing', async () => {
    const before = h.dispatched.scoring.length;
    const refusal = async (key: string, input: Record<string, unknown>) =>
      (await h.run(key, START, { input: { modelVersion: 'v0001', ...input } })).errors[0]?.extensions;
    expect(await refusal(h.keys.PARTNER, { prefix: 'imports/archive' })).toMatchObject({ code: 'FORBIDDEN' });
    expect(await refusal(h.keys.SCIENTIST, { prefix: 'keys/by-hash' })).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'prefix',
    });
    expect(await refusal(h.keys.SCIENTIST, { prefix: 'imports/nothing-here' })).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'prefix',
    });
    expect(await refusal(h.keys.SCIENTIST, { prefix: 'imports/archive', chunkSize: 0 })).toMatchObject({
      field: 'chunkSize',
    });
    expect(await refusal(h.keys.SCIENTIST, { prefix: 'imports/archive', datasetId: 'ds-x' })).toMatchObject({
      code: 'BAD_USER_INPUT',
    });
    expect(
      await refusal(h.keys.SCIENTIST, { prefix: 'imports/archive', modelVersion: 'v0099' }),
    ).toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(h.dispatched.scoring.length).toBe(before);
    expect((await h.run(h.keys.PARTNER, '{ scoringJob(id: "sc-x") { id } }')).code).toBe('FORBIDDEN');
  });
});
