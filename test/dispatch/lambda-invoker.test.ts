import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LambdaJobDispatcher } from '../../src/dispatch/job-dispatcher';
import { LambdaScoringDispatcher } from '../../src/dispatch/scoring-dispatcher';
import { ErrorCode } from '../../src/errors';
import { LambdaEmulator } from '../../src/local/lambda-emulator';
import { createLogger } from '../../src/observability/log';

/**
 * The dispatchers make a real Lambda Invoke (InvocationType Event) over HTTP; the local emulator runs
 * the function named in a child process, as it runs the workers in the local stack. The function here
 * records the event it got, so these tests see the payload each dispatcher sends.
 */
describe('Lambda dispatchers against the local Lambda emulator', () => {
  let emulator: LambdaEmulator;
  let endpoint: string;
  let recordDir: string;
  /** Exit codes of finished invocations, and waiters for those not finished yet, by request id. */
  const exits = new Map<string, number | null>();
  const waiters = new Map<string, (exitCode: number | null) => void>();
  const exitOf = (requestId: string) =>
    exits.has(requestId)
      ? Promise.resolve(exits.get(requestId)!)
      : new Promise<number | null>((resolve) => waiters.set(requestId, resolve));

  beforeAll(async () => {
    recordDir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-dispatch-'));
    const recorder = path.join(__dirname, '..', 'fixtures', 'lambda', 'record-event.ts');
    emulator = new LambdaEmulator({
      functions: { 'test-trainWorker': recorder, 'test-scoreWorker': recorder },
      env: { ...process.env, RECORD_DIR: recordDir },
      maxRetries: 0,
      log: createLogger('silent'),
    });
    emulator.onSettled = (_name, requestId, code) => {
      exits.set(requestId, code);
      waiters.get(requestId)?.(code);
    };
    ({ endpoint } = await emulator.start());
  });
  afterAll(async () => {
    await emulator?.stop();
    await rm(recordDir, { recursive: true, force: true });
  });

  /** Dispatches, then waits for the one invocation it caused to finish and returns what it recorded. */
  async function delivered(dispatch: () => Promise<void>): Promise<{ event: unknown; functionName: string }> {
    const before = new Set(emulator.invocations().map((i) => i.requestId));
    await dispatch();
    const invocation = emulator.invocations().find((i) => !before.has(i.requestId));
    expect(invocation).toBeDefined();
    expect(await exitOf(invocation!.requestId)).toBe(0);
    return JSON.parse(await readFile(path.join(recordDir, `${invocation!.requestId}.json`), 'utf8'));
  }

  it('starts the training worker with exactly { jobId }', async () => {
    const dispatcher = new LambdaJobDispatcher('test-trainWorker', { region: 'us-east-1', endpoint });
    expect(await delivered(() => dispatcher.dispatch({ jobId: 'job-01abc' }))).toEqual({
      event: { jobId: 'job-01abc' },
      functionName: 'test-trainWorker',
    });
  });

  it('starts the scoring worker with { jobId } to plan and { jobId, chunk } to score a chunk', async () => {
    const dispatcher = new LambdaScoringDispatcher('test-scoreWorker', { region: 'us-east-1', endpoint });
    expect((await delivered(() => dispatcher.dispatch({ jobId: 'sc-1' }))).event).toEqual({ jobId: 'sc-1' });
    expect((await delivered(() => dispatcher.dispatch({ jobId: 'sc-1', chunk: 7 }))).event).toEqual({
      jobId: 'sc-1',
      chunk: 7,
    });
  });

  it('reports a worker that cannot be started as UNAVAILABLE, naming the worker', async () => {
    const missing = new LambdaJobDispatcher('no-such-function', { region: 'us-east-1', endpoint });
    await expect(missing.dispatch({ jobId: 'job-x' })).rejects.toMatchObject({
      code: ErrorCode.UNAVAILABLE,
      message: expect.stringMatching(/^The training worker could not be started: /),
    });
    // Nothing listens on port 9 of 127.0.0.1 (discard): the invoke cannot even connect.
    const unreachable = new LambdaScoringDispatcher('test-scoreWorker', {
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
    });
    await expect(unreachable.dispatch({ jobId: 'sc-x' })).rejects.toMatchObject({
      code: ErrorCode.UNAVAILABLE,
      message: expect.stringMatching(/^The scoring worker could not be started: /),
    });
  });
});
