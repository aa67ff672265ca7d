import { ErrorCode } from '../../src/errors';
import type { TestS3 } from '../helpers/s3';
import { handlerEnvironment, lambdaContext } from '../helpers/handler-env';

/** The scoring worker's Lambda entry point, configured from the environment like on Lambda. */
describe('score-worker handler', () => {
  let s3: TestS3;
  let handler: typeof import('../../src/handlers/score-worker').handler;

  beforeAll(async () => {
    s3 = await handlerEnvironment();
    ({ handler } = await import('../../src/handlers/score-worker'));
  });
  afterAll(() => s3?.stop());

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
