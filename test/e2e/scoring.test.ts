import { layout } from '../../src/storage/layout';
import { encodeBmp, syntheticCell } from '../../src/ml/data/synthetic';
import type { ScoringRow } from '../../src/services/scoring';
import { errorCode, FINAL, startE2eStack, type E2eStack } from '../helpers/e2e-stack';
import { graphqlClient, ok, waitFor } from '../helpers/graphql';
import { registerUntrainedModel } from '../helpers/untrained-model';

/**
 * Bulk scoring through the real stack: the GraphQL handler behind HTTP, the scoring worker in child
 * processes of the Lambda emulator (two at once), S3 on 127.0.0.1. The cells are seeded synthetic ones
 * (src/ml/data/synthetic.ts, 128 px) and the model an untrained one: these tests are about the fan-out, not
 * about what the numbers say.
 */
const CELLS = 200;
const PREFIX = 'imports/synthetic-archive';
const JOB_FIELDS =
  'id status totalImages chunkCount completedChunks scoredImages progress error modelVersion ' +
  'summary { images scored failed all normal needsReview byReason { reason count } } ' +
  'results { jsonLinesUrl csvUrl summaryUrl }';

interface ScoringView {
  id: string;
  status: string;
  totalImages: number | null;
  chunkCount: number | null;
  completedChunks: number;
  scoredImages: number;
  progress: number;
  error: string | null;
  modelVersion: string;
  summary: {
    images: number;
    scored: number;
    failed: number;
    all: number;
    normal: number;
    needsReview: number;
    byReason: Array<{ reason: string; count: number }>;
  } | null;
  results: { jsonLinesUrl: string; csvUrl: string; summaryUrl: string } | null;
}

describe('bulk scoring (e2e)', () => {
  let e2e: E2eStack;
  let modelVersion: string;
  const keys: string[] = [];
  const bytes = new Map<string, Buffer>();

  beforeAll(async () => {
    e2e = await startE2eStack('scoring', { workerConcurrency: 2 });
    const card = await registerUntrainedModel(e2e.stack.services, {
      inputSize: 32,
      notes: 'untrained, registered by the scoring e2e test',
    });
    modelVersion = card.version;
    const { store } = e2e.stack.services;
    for (let i = 0; i < CELLS; i++) {
      const key = `${PREFIX}/cell-${String(i).padStart(3, '0')}.bmp`;
      const bmp = encodeBmp(syntheticCell(1000 + i, { label: (i % 2) as 0 | 1, size: 128 }));
      await store.put(key, bmp, { contentType: 'image/bmp' });
      keys.push(key);
      bytes.set(key, bmp);
    }
  }, 120_000);

  afterAll(async () => {
    await e2e?.stop();
  });

  const start = async (input: Record<string, unknown>) =>
    ok(
      await e2e.gql<{ startScoring: ScoringView }>(
        `mutation($input: StartScoringInput!) { startScoring(input: $input) { ${JOB_FIELDS} } }`,
        { input },
      ),
    ).startScoring;
  const read = async (id: string) =>
    ok(
      await e2e.gql<{ scoringJob: ScoringView }>(
        `query($id: ID!) { scoringJob(id: $id) { ${JOB_FIELDS} } }`,
        {
          id,
        },
      ),
    ).scoringJob;
  const scoringWorkers = () =>
    e2e.stack.emulator.invocations().filter((i) => i.functionName.endsWith('scoreWorker'));
  const chunkInfo = (jobId: string, chunk: number, file: 'partial.jsonl' | 'result.jsonl') =>
    e2e.stack.services.store.head(layout.scoringChunk(jobId, chunk, file));

  it('refuses partners, prefixes inside its own data and bad input, and creates no job', async () => {
    const { services } = e2e.stack;
    const before = (await services.store.listAll('scoring/')).length;
    const partner = await services.auth.create(
      { keyId: 'bootstrap', role: 'ADMIN', partnerId: 'bootstrap' },
      'lab partner',
      'PARTNER',
    );
    const asPartner = graphqlClient(e2e.stack.url, partner.secret);
    const startAs = (gql: typeof e2e.gql, input: Record<string, unknown>) =>
      gql('mutation($input: StartScoringInput!) { startScoring(input: $input) { id } }', { input });

    expect(errorCode(await startAs(asPartner, { prefix: PREFIX, modelVersion }))).toBe('FORBIDDEN');
    expect(errorCode(await asPartner('{ scoringJob(id: "sc-x") { id } }'))).toBe('FORBIDDEN');
    expect(errorCode(await asPartner('mutation { cancelScoring(id: "sc-x") { id } }'))).toBe('FORBIDDEN');

    for (const prefix of ['keys/', 'predictions', '/audit/2026', 'scoring/', '../keys', 'imports/../keys']) {
      expect(errorCode(await startAs(e2e.gql, { prefix, modelVersion }))).toBe('BAD_USER_INPUT');
    }
    expect(errorCode(await startAs(e2e.gql, { prefix: 'imports/nothing-here', modelVersion }))).toBe(
      'BAD_USER_INPUT',
    );
    expect(errorCode(await startAs(e2e.gql, { prefix: PREFIX, datasetId: 'ds-x', modelVersion }))).toBe(
      'BAD_USER_INPUT',
    );
    expect(errorCode(await startAs(e2e.gql, { modelVersion }))).toBe('BAD_USER_INPUT');
    expect(errorCode(await startAs(e2e.gql, { datasetId: 'ds-missing', modelVersion }))).toBe('NOT_FOUND');
    expect(errorCode(await startAs(e2e.gql, { prefix: PREFIX, modelVersion: 'v9999' }))).toBe('NOT_FOUND');
    expect(errorCode(await startAs(e2e.gql, { prefix: PREFIX, modelVersion, chunkSize: 0 }))).toBe(
      'BAD_USER_INPUT',
    );
    expect(errorCode(await startAs(e2e.gql, { prefix: PREFIX, modelVersion, concurrency: 101 }))).toBe(
      'BAD_USER_INPUT',
    );
    expect((await e2e.gql('{ scoringJob(id: "sc-missing") { id } }')).data).toEqual({ scoringJob: null });
    expect(errorCode(await e2e.gql('{ scoringJob(id: "../keys") { id } }'))).toBe('BAD_USER_INPUT');
    expect((await services.store.listAll('scoring/')).length).toBe(before);
  });

  it('scores 200 cells in 4 chunks, with a worker killed mid-chunk, each image exactly once', async () => {
    const { services } = e2e.stack;
    const job = await start({ prefix: PREFIX, modelVersion, chunkSize: 50, concurrency: 2 });
    expect(job.status).toBe('QUEUED');

    // Kill every scoring worker as soon as a chunk has checkpointed rows but no result yet.
    const killedChunks = await waitFor(
      'a chunk part-way through',
      async () => {
        for (let chunk = 0; chunk < 4; chunk++) {
          const partial = await chunkInfo(job.id, chunk, 'partial.jsonl');
          if (partial && !(await chunkInfo(job.id, chunk, 'result.jsonl'))) {
            const workers = scoringWorkers();
            for (const worker of workers) worker.child.kill('SIGKILL');
            return workers.length > 0 ? [chunk] : undefined;
          }
        }
        return undefined;
      },
      90_000,
      20,
    );
    expect(killedChunks).toHaveLength(1);

    const done = await waitFor(
      'the job to end',
      async () => {
        const current = await read(job.id);
        return FINAL.includes(current.status) ? current : undefined;
      },
      120_000,
      250,
    );
    expect(done).toMatchObject({
      status: 'SUCCEEDED',
      totalImages: CELLS,
      chunkCount: 4,
      completedChunks: 4,
    });
    expect(done.scoredImages).toBe(CELLS);
    expect(done.progress).toBe(1);

    // The killed chunk was resumed from its checkpoint, not started over.
    const resumed = await chunkInfo(job.id, killedChunks[0], 'result.jsonl');
    expect(Number(resumed!.metadata['resumed-from'])).toBeGreaterThan(0);

    // The results, fetched the way a scientist would: presigned URLs over HTTP.
    const jsonl = await (await fetch(done.results!.jsonLinesUrl)).text();
    const rows = jsonl
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ScoringRow);
    expect(rows).toHaveLength(CELLS);
    expect(new Set(rows.map((r) => r.key)).size).toBe(CELLS);
    expect(rows.map((r) => r.key).sort()).toEqual([...keys].sort());
    for (const row of rows) {
      expect(row.error).toBeNull();
      expect(row.probabilityAll).toBeGreaterThanOrEqual(0);
      expect(row.probabilityAll).toBeLessThanOrEqual(1);
      expect(row.needsReview).toBe(row.reviewReasons.length > 0);
    }
    const csv = (await (await fetch(done.results!.csvUrl)).text()).trim().split('\n');
    expect(csv[0]).toBe('key,imageId,label,probabilityAll,needsReview,reviewReasons,error');
    expect(csv).toHaveLength(CELLS + 1);
    const summary = JSON.parse(await (await fetch(done.results!.summaryUrl)).text());
    expect(summary.images).toBe(CELLS);
    expect(done.summary!.all + done.summary!.normal).toBe(CELLS);
    expect(done.summary!.all).toBe(rows.filter((r) => r.label === 'ALL').length);
    expect(done.summary!.needsReview).toBe(rows.filter((r) => r.needsReview).length);
    const uncertain = done.summary!.byReason.find((r) => r.reason === 'UNCERTAIN')!.count;
    expect(uncertain).toBe(rows.filter((r) => r.reviewReasons.includes('UNCERTAIN')).length);

    // Scoring made no predictions and put nothing in the review queue.
    expect(await services.store.listAll('predictions/')).toHaveLength(0);
    expect(await services.store.listAll(layout.pendingReviewsPrefix())).toHaveLength(0);

    // The same image through predict gets the same call and the same reasons.
    for (const row of rows.slice(0, 3)) {
      const { predict } = ok(
        await e2e.gql(
          `mutation($input: PredictInput!) { predict(input: $input) { label probabilityAll needsReview reviewReasons } }`,
          { input: { imageBase64: bytes.get(row.key)!.toString('base64'), modelVersion, explain: false } },
        ),
      );
      expect(predict.label).toBe(row.label);
      expect(predict.probabilityAll).toBeCloseTo(row.probabilityAll!, 5);
      expect(predict.reviewReasons).toEqual(row.reviewReasons);
    }
  }, 240_000);

  it('cancel stops the chunks: nothing more is scored or assembled', async () => {
    const job = await start({ prefix: PREFIX, modelVersion, chunkSize: 10, concurrency: 2 });
    await waitFor(
      'the first chunk to finish',
      async () => ((await read(job.id)).completedChunks >= 1 ? true : undefined),
      90_000,
      100,
    );
    const cancelled = ok(
      await e2e.gql(`mutation($id: ID!) { cancelScoring(id: $id) { ${JOB_FIELDS} } }`, { id: job.id }),
    ).cancelScoring as ScoringView;
    expect(cancelled.status).toBe('CANCELLED');
    expect(cancelled.results).toBeNull();

    // Every scoring worker ends (within about a second of its next check) and none is waiting.
    await waitFor(
      'the scoring workers to stop',
      async () => (scoringWorkers().length === 0 && e2e.stack.emulator.queued() === 0 ? true : undefined),
      30_000,
      100,
    );
    const settled = await read(job.id);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const later = await read(job.id);
    expect(later.status).toBe('CANCELLED');
    expect(later.completedChunks).toBe(settled.completedChunks);
    expect(later.completedChunks).toBeLessThan(20);
    expect(later.results).toBeNull();
    expect(await e2e.stack.services.store.head(layout.scoringAssembly(job.id))).toBeNull();
    expect(await e2e.stack.services.store.head(layout.scoringResults(job.id, 'results.jsonl'))).toBeNull();

    const again = await e2e.gql('mutation($id: ID!) { cancelScoring(id: $id) { id } }', { id: job.id });
    expect(errorCode(again)).toBe('CONFLICT');
  }, 180_000);
});
