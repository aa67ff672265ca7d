import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { ErrorCode } from '../../src/errors';
import { LambdaEmulator } from '../../src/local/lambda-emulator';
import { createLogger } from '../../src/observability/log';
import { createServices } from '../../src/services';
import { ANONYMOUS_ADMIN } from '../../src/services/auth';
import { PSEUDONYM } from '../../src/services/pseudonyms';
import { startTestS3, type TestS3 } from '../helpers/s3';

/**
 * The composition root from a Config alone, as a handler calls it: no overrides, so the S3 client, the
 * Lambda dispatchers and the pseudonym key are the ones the configuration names, over a real local S3
 * and the local Lambda emulator.
 */
describe('createServices', () => {
  let s3: TestS3;
  let emulator: LambdaEmulator;
  let recordDir: string;
  const settled = new Map<string, () => void>();
  /** The configuration a handler on the `test` stage would read, plus `extra`. */
  let env: (extra?: Record<string, string>) => Record<string, string>;

  beforeAll(async () => {
    s3 = await startTestS3();
    // The default credential chain, as on Lambda: the local S3's own secret in the environment.
    process.env.AWS_ACCESS_KEY_ID = s3.config.credentials!.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.config.credentials!.secretAccessKey;
    recordDir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-services-'));
    const recorder = path.join(__dirname, '..', 'fixtures', 'lambda', 'record-event.ts');
    emulator = new LambdaEmulator({
      functions: { 'wired-trainWorker': recorder, 'wired-scoreWorker': recorder },
      env: { ...process.env, RECORD_DIR: recordDir },
      maxRetries: 0,
      log: createLogger('silent'),
    });
    emulator.onSettled = (_name, requestId) => settled.get(requestId)?.();
    const { endpoint } = await emulator.start();
    env = (extra = {}) => ({
      LYMPHOSCOPE_STAGE: 'test',
      LYMPHOSCOPE_BUCKET: s3.bucket,
      LYMPHOSCOPE_S3_ENDPOINT: s3.endpoint,
      AWS_REGION: s3.config.region,
      LYMPHOSCOPE_LAMBDA_ENDPOINT: endpoint,
      LYMPHOSCOPE_TRAIN_WORKER_FUNCTION: 'wired-trainWorker',
      LYMPHOSCOPE_SCORE_WORKER_FUNCTION: 'wired-scoreWorker',
      LYMPHOSCOPE_LOG_LEVEL: 'silent',
      ...extra,
    });
  });
  afterAll(async () => {
    await emulator?.stop();
    await s3?.stop();
    if (recordDir) await rm(recordDir, { recursive: true, force: true });
  });

  it('reaches the configured bucket through the configured endpoint, and shows a wrong bucket as unreachable', async () => {
    const services = createServices(loadConfig(env()));
    expect(await services.store.ping()).toBe(true);
    await services.store.put('wiring/from-services.txt', Buffer.from('written by createServices'));
    expect((await s3.store.get('wiring/from-services.txt'))?.body.toString()).toBe(
      'written by createServices',
    );
    await services.store.delete('wiring/from-services.txt');
    // A bucket that does not exist is not a crash at start: the health check reports storage unreachable.
    const elsewhere = createServices(loadConfig(env({ LYMPHOSCOPE_BUCKET: 'no-such-bucket' })));
    expect(await elsewhere.store.ping()).toBe(false);
  });

  it('starts the training and scoring workers named in the configuration, at its Lambda endpoint', async () => {
    const services = createServices(loadConfig(env()));
    const delivered = async (dispatch: () => Promise<void>) => {
      const before = new Set(emulator.invocations().map((i) => i.requestId));
      await dispatch();
      const invocation = emulator.invocations().find((i) => !before.has(i.requestId))!;
      await new Promise<void>((resolve) => settled.set(invocation.requestId, resolve));
      return JSON.parse(await readFile(path.join(recordDir, `${invocation.requestId}.json`), 'utf8'));
    };
    expect(await delivered(() => services.dispatcher.dispatch({ jobId: 'job-wired' }))).toEqual({
      event: { jobId: 'job-wired' },
      functionName: 'wired-trainWorker',
    });
    expect(await delivered(() => services.scoringDispatcher.dispatch({ jobId: 'sc-wired' }))).toEqual({
      event: { jobId: 'sc-wired' },
      functionName: 'wired-scoreWorker',
    });
    // A function the configuration names wrongly is a clear UNAVAILABLE, not a silent loss.
    const misnamed = createServices(loadConfig(env({ LYMPHOSCOPE_TRAIN_WORKER_FUNCTION: 'no-such-worker' })));
    await expect(misnamed.dispatcher.dispatch({ jobId: 'job-lost' })).rejects.toMatchObject({
      code: ErrorCode.UNAVAILABLE,
    });
  });

  it("hands the configuration's limits to the services that enforce them", async () => {
    const services = createServices(loadConfig(env({ LYMPHOSCOPE_MAX_EPOCHS: '5' })));
    await expect(
      services.training.start(ANONYMOUS_ADMIN, { datasetId: 'ds-none', epochs: 6 }),
    ).rejects.toMatchObject({ code: ErrorCode.BAD_USER_INPUT, message: expect.stringMatching(/epochs.*5/) });
    // Within the limit the request goes on to look for the dataset.
    await expect(
      services.training.start(ANONYMOUS_ADMIN, { datasetId: 'ds-none', epochs: 5 }),
    ).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
  });

  it('pseudonymises subject ids under the configured key, and refuses them on a deployed stage without one', () => {
    const key = 'k'.repeat(40);
    const one = createServices(loadConfig(env({ LYMPHOSCOPE_PSEUDONYM_KEY: key })));
    const again = createServices(loadConfig(env({ LYMPHOSCOPE_PSEUDONYM_KEY: key })));
    const other = createServices(loadConfig(env({ LYMPHOSCOPE_PSEUDONYM_KEY: 'o'.repeat(40) })));
    const pseudonym = one.pseudonyms.subject('patient-7');
    expect(pseudonym).toMatch(PSEUDONYM);
    // The same key after a restart (another container) gives the same pseudonym; another key does not.
    expect(again.pseudonyms.subject('patient-7')).toBe(pseudonym);
    expect(other.pseudonyms.subject('patient-7')).not.toBe(pseudonym);
    expect(one.pseudonyms.ephemeral).toBe(false);

    const deployed = createServices(loadConfig(env({ LYMPHOSCOPE_STAGE: 'dev' })));
    expect(() => deployed.pseudonyms.subject('patient-7')).toThrow(/no pseudonym key/);
    expect(deployed.pseudonyms.subject(null)).toBeNull();
    // The test and local stages make one up for the process rather than refuse.
    expect(createServices(loadConfig(env())).pseudonyms.ephemeral).toBe(true);
  });
});
