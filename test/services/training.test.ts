import { datasetServiceOn } from '../helpers/dataset-service';
import { runBounded } from '../../src/concurrency/run-bounded';
import { ErrorCode } from '../../src/errors';
import { DEFAULT_TRAINING_CONFIG } from '../../src/ml/training/train';
import { createLogger } from '../../src/observability/log';
import type { Caller } from '../../src/services/auth';
import { DatasetService } from '../../src/services/datasets';
import { TrainingService, type Snapshot } from '../../src/services/training';
import { JsonDocuments } from '../../src/storage/json-documents';
import { layout } from '../../src/storage/layout';
import { sampleImages } from '../helpers/sample';
import { startTestS3, type TestS3 } from '../helpers/s3';

/**
 * startTraining's steps (validation, dataset snapshot, job record, dispatch) against a real local S3 and
 * the 63 real C-NMC cells of data/cnmc-sample. The dispatcher is the port the service is given; here it
 * records the events instead of invoking a worker, or fails as an unreachable Lambda would.
 */
describe('TrainingService.start', () => {
  let s3: TestS3;
  let docs: JsonDocuments;
  let datasets: DatasetService;
  let datasetId: string;
  let tinyDatasetId: string;
  const dispatched: string[] = [];
  let dispatchFails = false;
  const caller: Caller = { keyId: 'key-scientist', role: 'SCIENTIST', partnerId: 'lab' };
  let training: TrainingService;

  beforeAll(async () => {
    s3 = await startTestS3();
    ({ datasets, docs } = datasetServiceOn(s3.store));
    training = new TrainingService(
      s3.store,
      docs,
      datasets,
      {
        dispatch: async (event) => {
          if (dispatchFails) throw new Error('Lambda did not answer');
          dispatched.push(event.jobId);
        },
      },
      DEFAULT_TRAINING_CONFIG,
      { epochs: 200 },
      createLogger('silent'),
    );
    const images = sampleImages();
    datasetId = (await datasets.create(caller, 'sample')).id;
    await runBounded(
      images.map((image) => async () => {
        await datasets.addImageBytes(caller, {
          datasetId,
          label: image.label,
          bytes: image.bytes,
          filename: image.name,
          source: 'test',
        });
      }),
      4,
    );
    tinyDatasetId = (await datasets.create(caller, 'tiny')).id;
    for (const image of images.slice(0, 9)) {
      await datasets.addImageBytes(caller, {
        datasetId: tinyDatasetId,
        label: image.label,
        bytes: image.bytes,
        source: 'test',
      });
    }
  });
  afterAll(() => s3?.stop());

  const jobKeys = async () => (await s3.listKeys()).filter((k) => /^jobs\/|\/snapshots\//.test(k));

  it('freezes every image into a subject-grouped snapshot, writes the job QUEUED and dispatches it once', async () => {
    const before = dispatched.length;
    const job = await training.start(caller, { datasetId, epochs: 3 });
    expect(job).toMatchObject({
      status: 'QUEUED',
      datasetId,
      snapshotId: job.id,
      epoch: 0,
      createdBy: caller.keyId,
    });
    expect(job.config).toMatchObject({ epochs: 3, validationFraction: 0.2, testFraction: 0.2 });
    expect(dispatched.slice(before)).toEqual([job.id]);

    const stored = await docs.get<typeof job>(layout.job(job.id));
    expect(stored!.value).toEqual(job);
    const snapshot = (await docs.get<Snapshot>(layout.snapshot(datasetId, job.id)))!.value;
    expect(snapshot.items).toHaveLength(63);
    const bySplit = (name: string) => snapshot.items.filter((i) => i.split === name);
    expect(job.split).toMatchObject({
      train: bySplit('train').length,
      validation: bySplit('validation').length,
      test: bySplit('test').length,
    });
    // Grouped by subject: no subject on two sides.
    const sides = new Map<string, Set<string>>();
    for (const item of snapshot.items) {
      if (!item.subjectId) continue;
      sides.set(item.subjectId, (sides.get(item.subjectId) ?? new Set()).add(item.split));
    }
    expect(sides.size).toBeGreaterThan(3);
    for (const seen of sides.values()) expect(seen.size).toBe(1);
  });

  it('refuses bad settings, an unknown dataset and a dataset too small, writing nothing', async () => {
    const before = await jobKeys();
    await expect(training.start(caller, { datasetId, epochs: 201 })).rejects.toMatchObject({
      code: ErrorCode.BAD_USER_INPUT,
      details: { field: 'epochs' },
    });
    await expect(training.start(caller, { datasetId: 'ds-missing' })).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
    await expect(training.start(caller, { datasetId: tinyDatasetId, clientToken: 'tiny-1' })).rejects.toThrow(
      /has 9 images .* at least 10 with both labels/,
    );
    await expect(training.start(caller, { datasetId, clientToken: 'x'.repeat(201) })).rejects.toMatchObject({
      details: { field: 'clientToken' },
    });
    expect(await jobKeys()).toEqual(before);
  });

  it('starts one job for concurrent requests with one clientToken, and returns it to all of them', async () => {
    const before = dispatched.length;
    const jobs = await Promise.all(
      [0, 1, 2].map(() => training.start(caller, { datasetId, clientToken: 'run-42' })),
    );
    expect(new Set(jobs.map((j) => j.id)).size).toBe(1);
    expect(dispatched.slice(before)).toEqual([jobs[0].id]);
    // Another caller's token of the same text is another job.
    const other = await training.start(
      { ...caller, keyId: 'key-other' },
      { datasetId, clientToken: 'run-42' },
    );
    expect(other.id).not.toBe(jobs[0].id);
  });

  it('marks the job FAILED when no worker can be dispatched, and says why', async () => {
    dispatchFails = true;
    try {
      const before = new Set(await jobKeys());
      await expect(training.start(caller, { datasetId })).rejects.toThrow('Lambda did not answer');
      const added = (await jobKeys()).filter((k) => !before.has(k));
      const jobKey = added.find((k) => k.endsWith('/job.json'))!;
      expect(added.some((k) => k.includes('/snapshots/'))).toBe(true);
      const job = (await docs.get<{ status: string; error: string; finishedAt: string }>(jobKey))!.value;
      expect(job).toMatchObject({ status: 'FAILED', error: 'Lambda did not answer' });
      expect(job.finishedAt).not.toBeNull();
    } finally {
      dispatchFails = false;
    }
  });
});
