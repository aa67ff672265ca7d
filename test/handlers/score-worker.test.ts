import { ErrorCode } from '../../src/errors';
import type { TestS3 } from '../helpers/s3';
import { handlerEnvironment, lambdaContext } from '../helpers/handler-env';

/** The scoring worker's Lambda entry point, configured from the environment like on Lambda. */
describe('score-worker handler', () => {
  let s3: TestS3;
  let handler: typeof import('../../src/handlers/score-worker').handler;

  beforeAll(async () => {
    // ML settings other than the defaults the test setup gave this file's ML core: the handler must pass them in.
    s3 = await handlerEnvironment({ LYMPHOSCOPE_ONNX_THREADS: '1', LYMPHOSCOPE_TRAIN_RUNTIME: 'tfjs' });
    ({ handler } = await import('../../src/handlers/score-worker'));
  });
  afterAll(() => s3?.stop());

  it("hands the environment's ML settings, validated, to the ML core when it loads", async () => {
    const { mlSettings } = await import('../../src/ml/settings');
    expect(mlSettings()).toMatchObject({ onnxThreads: 1, trainingRuntime: 'tfjs', onnx: true });
    process.env.LYMPHOSCOPE_ONNX = 'maybe';
    try {
      await jest.isolateModulesAsync(async () => {
        await expect(import('../../src/handlers/score-worker')).rejects.toThrow(
          "Invalid configuration: LYMPHOSCOPE_ONNX: must be one of 'on', 'off', not 'maybe'",
        );
      });
    } finally {
      delete process.env.LYMPHOSCOPE_ONNX;
    }
  });

  it('refuses an event without a jobId, touching nothing', async () => {
    for (const event of [null, {}, { jobId: 42 }, { chunk: 1 }]) {
      await expect(handler(event as never, lambdaContext('req-1'))).rejects.toMatchObject({
        code: ErrorCode.BAD_USER_INPUT,
        message: 'The scoring event needs a jobId.',
      });
    }
    expect(await s3.listKeys()).toEqual([]);
  });

  it('stops at once for a job that does not exist, planning or scoring, and says which event it had', async () => {
    expect(await handler({ jobId: 'sc-missing' }, lambdaContext('req-2'))).toEqual({
      jobId: 'sc-missing',
      chunk: null,
      outcome: 'stopped',
    });
    expect(await handler({ jobId: 'sc-missing', chunk: 3 }, lambdaContext('req-3'))).toEqual({
      jobId: 'sc-missing',
      chunk: 3,
      outcome: 'stopped',
    });
    expect(await s3.listKeys()).toEqual([]);
  });
});
