import { startTestS3, type TestS3 } from './s3';

/**
 * A Lambda handler module reads its configuration from process.env when it is first imported, as on
 * Lambda. This points that environment at a fresh local S3 (and `extra`); import the handler after it,
 * with `await import(...)`. Jest gives each test file its own process.env and module registry.
 */
export async function handlerEnvironment(extra: Record<string, string> = {}): Promise<TestS3> {
  const s3 = await startTestS3();
  Object.assign(process.env, {
    LYMPHOSCOPE_STAGE: 'test',
    LYMPHOSCOPE_BUCKET: s3.bucket,
    LYMPHOSCOPE_S3_ENDPOINT: s3.endpoint,
    AWS_REGION: s3.config.region,
    AWS_ACCESS_KEY_ID: s3.config.credentials!.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.config.credentials!.secretAccessKey,
    LYMPHOSCOPE_LOG_LEVEL: 'silent',
    ...extra,
  });
  return s3;
}

/** Enough of Lambda's context for our handlers: the request id and the time left. */
export const lambdaContext = (awsRequestId: string, remainingMs = 60_000) =>
  ({
    awsRequestId,
    functionName: 'test',
    getRemainingTimeInMillis: () => remainingMs,
  }) as unknown as import('aws-lambda').Context;
