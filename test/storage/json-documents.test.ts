import { ErrorCode, LymphoscopeError, conflict } from '../../src/errors';
import { JsonDocuments } from '../../src/storage/json-documents';
import { ObjectStore } from '../../src/storage/object-store';
import { startTestS3, TestS3 } from '../helpers/s3';

interface Job {
  status: 'QUEUED' | 'RUNNING' | 'CANCELLED';
  epochsDone: number;
}

let s3: TestS3;
let docs: JsonDocuments;
beforeAll(async () => {
  s3 = await startTestS3();
  docs = new JsonDocuments(s3.store);
});
afterAll(() => s3.stop());

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof LymphoscopeError) return err.code;
    throw err;
  }
  return 'resolved';
}

it('creates a document once, and reads it back with its version', async () => {
  const etag = await docs.create<Job>('jobs/a/job.json', { status: 'QUEUED', epochsDone: 0 });
  expect(await docs.get<Job>('jobs/a/job.json')).toEqual({
    value: { status: 'QUEUED', epochsDone: 0 },
    etag,
  });
  expect(await codeOf(docs.create<Job>('jobs/a/job.json', { status: 'RUNNING', epochsDone: 0 }))).toBe(
    ErrorCode.CONFLICT,
  );
  expect((await docs.get<Job>('jobs/a/job.json'))!.value.status).toBe('QUEUED');
  const stored = await s3.store.head('jobs/a/job.json');
  expect(stored!.contentType).toBe('application/json');
});

it('answers null for a missing document', async () => {
  expect(await docs.get('jobs/none/job.json')).toBeNull();
});

it('replaces only the version that was read', async () => {
  const v1 = await docs.create<Job>('jobs/b/job.json', { status: 'QUEUED', epochsDone: 0 });
  const v2 = await docs.replace<Job>('jobs/b/job.json', { status: 'RUNNING', epochsDone: 0 }, v1);
  expect(v2).not.toBe(v1);
  // A second writer still holding v1 loses instead of overwriting RUNNING.
  expect(await codeOf(docs.replace<Job>('jobs/b/job.json', { status: 'CANCELLED', epochsDone: 0 }, v1))).toBe(
    ErrorCode.CONFLICT,
  );
  expect((await docs.get<Job>('jobs/b/job.json'))!).toEqual({
    value: { status: 'RUNNING', epochsDone: 0 },
    etag: v2,
  });
});

it('applies every one of many concurrent updates', async () => {
  await docs.create<Job>('jobs/c/job.json', { status: 'RUNNING', epochsDone: 0 });
  const writers = 12;
  const results = await Promise.all(
    Array.from({ length: writers }, () =>
      docs.update<Job>('jobs/c/job.json', (job) => ({ ...job, epochsDone: job.epochsDone + 1 })),
    ),
  );
  expect((await docs.get<Job>('jobs/c/job.json'))!.value.epochsDone).toBe(writers);
  // Each writer saw a distinct version: no increment was built on a value another had already used.
  expect(new Set(results.map((r) => r.value.epochsDone)).size).toBe(writers);
});

it('returns the value it wrote with the new version', async () => {
  await docs.create<Job>('jobs/d/job.json', { status: 'RUNNING', epochsDone: 4 });
  const updated = await docs.update<Job>('jobs/d/job.json', (job) => ({ ...job, epochsDone: 5 }));
  expect(updated).toEqual(await docs.get<Job>('jobs/d/job.json'));
});

it('gives up with CONFLICT once its retries are spent', async () => {
  await docs.create<Job>('jobs/e/job.json', { status: 'RUNNING', epochsDone: 0 });
  // A store on which another writer moves the document on right after every read, so no swap can win.
  let reads = 0;
  const contested: ObjectStore = Object.assign(Object.create(s3.store) as ObjectStore, {
    async get(key: string) {
      const read = await s3.store.get(key);
      reads++;
      await s3.store.put(key, JSON.stringify({ status: 'RUNNING', epochsDone: -reads }));
      return read;
    },
  });
  let calls = 0;
  const update = new JsonDocuments(contested).update<Job>(
    'jobs/e/job.json',
    (job) => {
      calls++;
      return { ...job, epochsDone: 100 };
    },
    { retries: 2 },
  );
  expect(await codeOf(update)).toBe(ErrorCode.CONFLICT);
  expect(calls).toBe(3);
  expect((await docs.get<Job>('jobs/e/job.json'))!.value.epochsDone).toBe(-3);
});

it('stops when the mutation refuses, without writing', async () => {
  const etag = await docs.create<Job>('jobs/f/job.json', { status: 'CANCELLED', epochsDone: 2 });
  const refused = docs.update<Job>('jobs/f/job.json', (job) => {
    if (job.status === 'CANCELLED') throw conflict('The job was cancelled.');
    return job;
  });
  expect(await codeOf(refused)).toBe(ErrorCode.CONFLICT);
  expect((await docs.get<Job>('jobs/f/job.json'))!.etag).toBe(etag);
});

it('fails NOT_FOUND when updating a missing document', async () => {
  expect(await codeOf(docs.update<Job>('jobs/none/job.json', (job) => job))).toBe(ErrorCode.NOT_FOUND);
});

it('writes unconditionally with put', async () => {
  await docs.put('models/aliases/test.json', { version: 'v1' });
  await docs.put('models/aliases/test.json', { version: 'v2' });
  expect((await docs.get<{ version: string }>('models/aliases/test.json'))!.value).toEqual({ version: 'v2' });
});

it('treats a stored body that is not JSON as corruption, not as user error', async () => {
  await s3.store.put('jobs/g/job.json', '{"status": "RUNN');
  await expect(docs.get('jobs/g/job.json')).rejects.toThrow(/not valid JSON/);
  await expect(docs.get('jobs/g/job.json')).rejects.not.toBeInstanceOf(LymphoscopeError);
});
