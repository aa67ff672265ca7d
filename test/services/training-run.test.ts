import { ErrorCode, LymphoscopeError } from '../../src/errors';
import { JobCannotSucceed } from '../../src/services/training-data';
import { LeaseLost } from '../../src/services/training-lease';
import { failureOf, finishedJob, unitName, workerTimings } from '../../src/services/training-run';
import { queuedJobRecord } from '../helpers/job-record';

describe('failureOf: what an error thrown while training means', () => {
  it('a lost lease stops this worker and names the new owner', () => {
    expect(failureOf(new LeaseLost('other-invocation'))).toEqual({
      kind: 'lease-lost',
      owner: 'other-invocation',
    });
  });

  it('unavailable storage is thrown on, so that Lambda retries the event', () => {
    const error = new LymphoscopeError(ErrorCode.UNAVAILABLE, 'S3 is down');
    expect(() => failureOf(error)).toThrow(error);
  });

  it('bad data fails the job in its own words and is not retried', () => {
    expect(failureOf(new JobCannotSucceed('Snapshot s1 is missing.'))).toEqual({
      kind: 'failed',
      message: 'Snapshot s1 is missing.',
      retryable: false,
    });
  });

  it("a typed error keeps its words; any other error's words stay in the log", () => {
    const typed = new LymphoscopeError(ErrorCode.BAD_USER_INPUT, 'epochs must be at most 200');
    expect(failureOf(typed)).toEqual({ kind: 'failed', message: typed.message, retryable: true });
    expect(failureOf(new TypeError('x is undefined at /var/task/index.js'))).toEqual({
      kind: 'failed',
      message: null,
      retryable: true,
    });
  });
});

describe('finishedJob', () => {
  it('ends the job: the status, its fields, no lease, and when', () => {
    const running = queuedJobRecord('job-1', {
      status: 'RUNNING',
      lease: { owner: 'me', expiresAt: new Date(Date.now() + 60_000).toISOString() },
    });
    const before = Date.now();
    const failed = finishedJob(running, 'FAILED', { error: 'fold 2 of seed 1 failed' });
    expect(failed).toMatchObject({
      id: 'job-1',
      status: 'FAILED',
      error: 'fold 2 of seed 1 failed',
      lease: null,
    });
    expect(Date.parse(failed.finishedAt!)).toBeGreaterThanOrEqual(before - 1);
    expect(failed.updatedAt).toBe(failed.finishedAt);
    expect(running.status).toBe('RUNNING');
  });
});

describe('workerTimings and unitName', () => {
  it('take the lease and the safety margin from the deps, then the config, then the defaults', () => {
    expect(workerTimings({})).toEqual({ leaseMs: 60_000, safetyMs: 50_000 });
    expect(workerTimings({ config: { workerSafetyMs: 5_000, workerLeaseMs: 9_000 } })).toEqual({
      leaseMs: 9_000,
      safetyMs: 5_000,
    });
    expect(
      workerTimings({ leaseMs: 1_000, config: { workerSafetyMs: 5_000, workerLeaseMs: 9_000 } }),
    ).toEqual({
      leaseMs: 1_000,
      safetyMs: 5_000,
    });
  });

  it('names a unit as the job error and the logs say it', () => {
    expect(unitName({ kind: 'FINAL', seed: 0, fold: 0 })).toBe('the served network');
    expect(unitName({ kind: 'FOLD', seed: 2, fold: 3 })).toBe('fold 3 of seed 2');
  });
});
