import { loadConfig } from '../../src/config';
import type { ScoringDispatcher, ScoringWorkerEvent } from '../../src/dispatch/scoring-dispatcher';
import { createServices, type Services } from '../../src/services';
import type { ScoringJobRecord, ScoringRow } from '../../src/services/scoring';
import {
  parseRows,
  runScoringInvocation,
  toCsv,
  toJsonLines,
  type ScoringWorkerDeps,
} from '../../src/services/scoring-worker';
import { layout } from '../../src/storage/layout';
import { startTestS3, type TestS3 } from '../helpers/s3';
import { modelArtifacts } from '../../src/services/model-artifacts';

/**
 * The steps of a scoring job that races decide, over the real local S3 server: chunks finishing at the
 * same moment, duplicated events (Lambda delivers async events at least once), a retried assembler.
 * The dispatcher records the events instead of invoking a worker: the e2e test runs the real fan-out.
 */
describe('scoring worker: completion and assembly', () => {
  let s3: TestS3;
  let services: Services;
  const dispatched: ScoringWorkerEvent[] = [];
  const recorder: ScoringDispatcher = { dispatch: async (event) => void dispatched.push(event) };
  let deps: ScoringWorkerDeps;

  beforeAll(async () => {
    s3 = await startTestS3();
    services = createServices(loadConfig({ LYMPHOSCOPE_LOG_LEVEL: 'silent' }), {
      store: s3.store,
      scoringDispatcher: recorder,
      registration: modelArtifacts,
    });
    deps = {
      store: services.store,
      docs: services.docs,
      models: services.models,
      dispatcher: recorder,
      log: services.log,
      limits: { uploadBytes: 10 << 20, imageSide: 4096, scoringImages: 1000 },
      safetyMs: 1000,
    };
  });

  afterAll(() => s3?.stop());

  const row = (
    key: string,
    label: 'ALL' | 'NORMAL',
    reasons: ScoringRow['reviewReasons'] = [],
  ): ScoringRow => ({
    key,
    imageId: null,
    label,
    probabilityAll: label === 'ALL' ? 0.9 : 0.1,
    needsReview: reasons.length > 0,
    reviewReasons: reasons,
    error: null,
  });

  /** A RUNNING job whose chunks all have their result written, as if each worker died just after. */
  async function jobWithFinishedChunks(
    id: string,
    chunks: ScoringRow[][],
    nextChunk = chunks.length,
    overrides: Partial<ScoringJobRecord> = {},
  ) {
    const now = new Date().toISOString();
    const job: ScoringJobRecord = {
      id,
      status: 'RUNNING',
      source: { datasetId: null, prefix: 'imports/x/' },
      modelVersion: 'v0001',
      chunkSize: 2,
      concurrency: 2,
      totalImages: chunks.flat().length,
      chunkCount: chunks.length,
      nextChunk,
      handoffs: {},
      completedChunks: [],
      scoredImages: 0,
      summary: null,
      error: null,
      cancelRequested: false,
      createdBy: 'key-test',
      createdAt: now,
      updatedAt: now,
      startedAt: now,
      finishedAt: null,
      ...overrides,
    };
    await services.docs.create(layout.scoringJob(id), job);
    for (const [index, rows] of chunks.entries()) {
      await services.store.put(layout.scoringChunk(id, index, 'result.jsonl'), toJsonLines(rows), {
        metadata: { rows: String(rows.length) },
      });
    }
  }

  const invoke = (jobId: string, chunk: number, invocationId: string, remainingMs = 600_000) =>
    runScoringInvocation(deps, { jobId, chunk, invocationId, remainingMs: () => remainingMs });

  it('assembles exactly once when chunks finish together and events are duplicated', async () => {
    const chunks = [
      [row('imports/x/a.bmp', 'ALL'), row('imports/x/b.bmp', 'NORMAL', ['UNCERTAIN'])],
      [row('imports/x/c.bmp', 'ALL'), row('imports/x/d.bmp', 'ALL', ['UNCERTAIN'])],
      [row('imports/x/e.bmp', 'NORMAL')],
    ];
    await jobWithFinishedChunks('sc-race', chunks);
    const outcomes = await Promise.all([
      invoke('sc-race', 0, 'inv-a'),
      invoke('sc-race', 1, 'inv-b'),
      invoke('sc-race', 2, 'inv-c'),
      invoke('sc-race', 2, 'inv-d'),
      invoke('sc-race', 1, 'inv-e'),
    ]);
    expect(outcomes.filter((o) => o === 'assembled')).toHaveLength(1);

    const job = (await services.scoring.get('sc-race'))!;
    expect(job.status).toBe('SUCCEEDED');
    expect(job.completedChunks.sort()).toEqual([0, 1, 2]);
    expect(job.scoredImages).toBe(5);
    expect(job.summary).toEqual({
      images: 5,
      scored: 5,
      failed: 0,
      byLabel: { ALL: 3, NORMAL: 2 },
      needsReview: 2,
      byReason: { UNCERTAIN: 2, OUT_OF_DOMAIN: 0 },
    });
    const claim = await services.docs.get<{ owner: string }>(layout.scoringAssembly('sc-race'));
    const assembler = ['inv-a', 'inv-b', 'inv-c', 'inv-d', 'inv-e'][outcomes.indexOf('assembled')];
    expect(claim?.value.owner).toBe(assembler);

    const results = await services.store.get(layout.scoringResults('sc-race', 'results.jsonl'));
    const keys = parseRows(results!.body.toString('utf8')).map((r) => r.key);
    expect(keys).toEqual(['a', 'b', 'c', 'd', 'e'].map((k) => `imports/x/${k}.bmp`));
    // No chunk was left to start: nothing was dispatched.
    expect(dispatched.filter((e) => e.jobId === 'sc-race')).toEqual([]);

    // A retry of any of them, the assembler included, changes nothing.
    expect(await invoke('sc-race', 2, assembler)).toBe('stopped');
    expect((await services.scoring.get('sc-race'))!.scoredImages).toBe(5);
  });

  it('a finishing chunk claims the next one once and goes on with it; a retry goes on with the same one', async () => {
    const chunks = [0, 1, 2, 3].map((i) => [row(`k/${i}.bmp`, 'ALL')]);
    await jobWithFinishedChunks('sc-handoff', chunks, 2);
    const sent = () => dispatched.filter((e) => e.jobId === 'sc-handoff');
    const read = async () => (await services.scoring.get('sc-handoff'))!;

    // Short of time: the claimed chunk goes to a new invocation.
    expect(await invoke('sc-handoff', 0, 'inv-0', 1500)).toBe('scored');
    expect(sent()).toEqual([{ jobId: 'sc-handoff', chunk: 2 }]);
    expect((await read()).nextChunk).toBe(3);
    // Its retry re-sends the same chunk and claims no other.
    expect(await invoke('sc-handoff', 0, 'inv-0', 1500)).toBe('scored');
    expect(sent()).toEqual([
      { jobId: 'sc-handoff', chunk: 2 },
      { jobId: 'sc-handoff', chunk: 2 },
    ]);
    expect((await read()).nextChunk).toBe(3);

    // With time left, chunk 1's worker claims chunk 3 and scores it itself: nothing is sent.
    expect(await invoke('sc-handoff', 1, 'inv-1')).toBe('scored');
    expect(sent()).toHaveLength(2);
    expect((await read()).completedChunks.sort()).toEqual([0, 1, 3]);
    expect((await read()).handoffs).toEqual({ '0': 2, '1': 3 });

    expect(await invoke('sc-handoff', 2, 'inv-2')).toBe('assembled');
    expect(await read()).toMatchObject({ status: 'SUCCEEDED', scoredImages: 4, nextChunk: 4 });
  });

  it('reading a job that stopped moving re-sends its unfinished chunks, once per period', async () => {
    const longAgo = new Date(Date.now() - 10 * 60_000).toISOString();
    const chunks = [0, 1, 2].map((i) => [row(`s/${i}.bmp`, 'NORMAL')]);
    await jobWithFinishedChunks('sc-stalled', chunks, 3, { completedChunks: [0], updatedAt: longAgo });
    await jobWithFinishedChunks('sc-alive', chunks, 3, { completedChunks: [0], updatedAt: longAgo });
    await services.store.put(layout.scoringChunk('sc-alive', 1, 'partial.jsonl'), toJsonLines(chunks[1]));
    const sent = (jobId: string) => dispatched.filter((e) => e.jobId === jobId);

    await services.scoring.getAndResumeIfStalled('sc-stalled');
    expect(sent('sc-stalled')).toEqual([
      { jobId: 'sc-stalled', chunk: 1 },
      { jobId: 'sc-stalled', chunk: 2 },
    ]);
    await services.scoring.getAndResumeIfStalled('sc-stalled');
    expect(sent('sc-stalled')).toHaveLength(2);

    // A chunk that checkpointed a moment ago is alive: nothing is re-sent.
    expect((await services.scoring.getAndResumeIfStalled('sc-alive'))!.resumeDispatchedAt).toBeUndefined();
    expect(sent('sc-alive')).toEqual([]);
  });

  it('an assembler that died is taken over once its claim is old', async () => {
    const longAgo = new Date(Date.now() - 10 * 60_000).toISOString();
    const chunks = [0, 1].map((i) => [row(`o/${i}.bmp`, 'ALL')]);
    await jobWithFinishedChunks('sc-orphan', chunks, 2, {
      completedChunks: [0, 1],
      scoredImages: 2,
      updatedAt: longAgo,
    });
    await services.docs.create(layout.scoringAssembly('sc-orphan'), {
      owner: 'dead-invocation',
      at: longAgo,
    });
    await services.scoring.getAndResumeIfStalled('sc-orphan');
    expect(dispatched.filter((e) => e.jobId === 'sc-orphan')).toEqual([{ jobId: 'sc-orphan', chunk: 0 }]);

    expect(await invoke('sc-orphan', 0, 'new-invocation')).toBe('assembled');
    expect((await services.scoring.get('sc-orphan'))!).toMatchObject({
      status: 'SUCCEEDED',
      scoredImages: 2,
    });
    const claim = await services.docs.get<{ owner: string }>(layout.scoringAssembly('sc-orphan'));
    expect(claim!.value.owner).toBe('new-invocation');
  });

  it('writes CSV a spreadsheet cannot run', () => {
    const csv = toCsv([
      { ...row('imports/=cmd|x.bmp', 'ALL', ['UNCERTAIN', 'OUT_OF_DOMAIN']), imageId: 'a,"b"' },
      {
        ...row('imports/y.bmp', 'NORMAL'),
        label: null,
        probabilityAll: null,
        needsReview: null,
        error: 'UNSUPPORTED_IMAGE',
      },
    ]).split('\n');
    expect(csv[0]).toBe('key,imageId,label,probabilityAll,needsReview,reviewReasons,error');
    expect(csv[1]).toBe('imports/=cmd|x.bmp,"a,""b""",ALL,0.9,true,UNCERTAIN;OUT_OF_DOMAIN,');
    expect(toCsv([row('=1+1', 'ALL')]).split('\n')[1]).toBe("'=1+1,,ALL,0.9,false,,");
    expect(csv[2]).toBe('imports/y.bmp,,,,,,UNSUPPORTED_IMAGE');
  });
});
