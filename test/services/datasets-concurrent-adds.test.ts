import { datasetServiceOn } from '../helpers/dataset-service';
import type { Caller } from '../../src/services/auth';
import { DatasetService } from '../../src/services/datasets';
import type { ObjectStore } from '../../src/storage/object-store';
import { sampleImages } from '../helpers/sample';
import { startTestS3, type TestS3 } from '../helpers/s3';

/**
 * Identical bytes added twice at the same moment are stored once and reported once as new. On a laptop
 * the local S3 answers in a millisecond and hides the race; real S3 takes tens of milliseconds per PUT,
 * which this store reproduces by delaying image writes (over the real local S3 server).
 */
describe('DatasetService: concurrent adds of the same bytes', () => {
  let s3: TestS3;
  let datasets: DatasetService;
  const caller: Caller = { keyId: 'key-test', role: 'ADMIN', partnerId: 'test' };
  const cell = sampleImages()[0];

  beforeAll(async () => {
    s3 = await startTestS3();
    const store: ObjectStore = Object.create(s3.store);
    store.put = async (key, body, opts) => {
      if (key.includes('/images/')) await new Promise((resolve) => setTimeout(resolve, 100));
      return s3.store.put(key, body, opts);
    };
    ({ datasets } = datasetServiceOn(store));
  });

  afterAll(() => s3?.stop());

  it('stores one object and answers duplicate to all but one caller', async () => {
    for (let round = 0; round < 5; round++) {
      const dataset = await datasets.create(caller, `race ${round}`);
      const results = await Promise.all(
        [0, 1, 2].map(() =>
          datasets.addImageBytes(caller, {
            datasetId: dataset.id,
            label: 'ALL',
            bytes: cell.bytes,
            filename: cell.name,
            source: 'test',
          }),
        ),
      );
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(new Set(results.map((r) => r.image.id)).size).toBe(1);
      // The subject the C-NMC name carries, pseudonymised (one key per process for hand-built services).
      const subjects = [...new Set(results.map((r) => r.image.subjectId))];
      expect(subjects).toEqual([expect.stringMatching(/^s-[0-9a-f]{32}$/)]);
      expect(await datasets.imageRefs(dataset.id)).toHaveLength(1);
    }
  });
});
