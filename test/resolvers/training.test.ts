import { runBounded } from '../../src/concurrency/run-bounded';
import { ANONYMOUS_ADMIN } from '../../src/services/auth';
import type { JobRecord } from '../../src/services/training';
import { layout } from '../../src/storage/layout';
import { sampleImages } from '../helpers/sample';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';

/**
 * The training resolvers: roles, the GraphQL enums mapped to the ML core's names and back, the
 * configured epoch bound, and the worker dispatched (recorded, not run). Data: the 63 real C-NMC cells.
 */
describe('training resolvers', () => {
  let h: ResolverHarness;
  let datasetId: string;

  beforeAll(async () => {
    h = await startResolverHarness({ LYMPHOSCOPE_MAX_EPOCHS: '40' });
    datasetId = (await h.services.datasets.create(ANONYMOUS_ADMIN, 'sample')).id;
    await runBounded(
      sampleImages().map((cell) => async () => {
        await h.services.datasets.addImageBytes(ANONYMOUS_ADMIN, {
          datasetId,
          label: cell.label,
          bytes: cell.bytes,
          filename: cell.name,
          source: 'test',
        });
      }),
      4,
    );
  });
  afterAll(() => h?.stop());

  const START = `mutation($input: StartTrainingInput!) {
    startTraining(input: $input) {
      id status epochs
      config { architecture classBalance fusion epochs inputSize testTimeAugmentation validationFraction }
    }
  }`;

  it('maps the API enums to the ML names, stores the job QUEUED and dispatches its worker', async () => {
    const result = await h.run(h.keys.SCIENTIST, START, {
      input: {
        datasetId,
        architecture: 'SEED_2X2X1X1',
        classBalance: 'SAMPLING',
        fusion: 'MORPHOLOGY_STACK',
        epochs: 3,
      },
    });
    expect(result.errors).toEqual([]);
    const job = result.data!.startTraining;
    expect(job).toMatchObject({
      status: 'QUEUED',
      epochs: 3,
      config: {
        architecture: 'SEED_2X2X1X1',
        classBalance: 'SAMPLING',
        fusion: 'MORPHOLOGY_STACK',
        epochs: 3,
      },
    });
    // The schema's defaults fill what was not given.
    expect(job.config).toMatchObject({ inputSize: 96, testTimeAugmentation: true, validationFraction: 0.2 });
    const stored = (await h.services.docs.get<JobRecord>(layout.job(job.id)))!.value;
    expect(stored.config).toMatchObject({
      architecture: 'seed-2x2x1x1',
      classBalance: 'sampling',
      fusion: 'morphology-stack',
    });
    expect(h.dispatched.training).toContainEqual({ jobId: job.id });

    const read = await h.run(h.keys.SCIENTIST, 'query($id: ID!) { trainingJob(id: $id) { id status } }', {
      id: job.id,
    });
    expect(read.data!.trainingJob).toEqual({ id: job.id, status: 'QUEUED' });
  });

  it('bounds epochs by LYMPHOSCOPE_MAX_EPOCHS and refuses partners, starting nothing', async () => {
    const before = h.dispatched.training.length;
    const tooMany = await h.run(h.keys.SCIENTIST, START, { input: { datasetId, epochs: 41 } });
    expect(tooMany.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'epochs' });
    expect(tooMany.errors[0].message).toBe('epochs must be an integer from 1 to 40.');
    expect((await h.run(h.keys.PARTNER, START, { input: { datasetId, epochs: 3 } })).code).toBe('FORBIDDEN');
    expect((await h.run(h.keys.SCIENTIST, START, { input: { datasetId: 'ds-none', epochs: 3 } })).code).toBe(
      'NOT_FOUND',
    );
    expect(h.dispatched.training.length).toBe(before);
  });

  it('answers null for an unknown job and refuses partners a job list', async () => {
    const unknown = await h.run(h.keys.SCIENTIST, '{ trainingJob(id: "job-unknown") { id } }');
    expect(unknown).toMatchObject({ data: { trainingJob: null }, errors: [] });
    expect((await h.run(h.keys.PARTNER, '{ trainingJobs { edges { node { id } } } }')).code).toBe(
      'FORBIDDEN',
    );
  });
});
