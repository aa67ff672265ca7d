/**
 * Runs one Lambda invocation in this process, for the local emulator: loads the handler module, builds a
 * Lambda-like context (request id, remaining time) and exits 0 on success, 1 on a thrown error.
 */
import type { Context } from 'aws-lambda';

async function main(): Promise<void> {
  const modulePath = process.env.LYMPHOSCOPE_LAMBDA_MODULE!;
  const event = JSON.parse(process.env.LYMPHOSCOPE_LAMBDA_EVENT ?? '{}');
  const deadline = Number(process.env.LYMPHOSCOPE_LAMBDA_DEADLINE);
  const requestId = process.env.LYMPHOSCOPE_LAMBDA_REQUEST_ID ?? 'local';
  const functionName = process.env.LYMPHOSCOPE_LAMBDA_FUNCTION ?? 'local';
  const mod = (await import(modulePath)) as {
    handler: (event: unknown, context: Context) => Promise<unknown>;
  };
  const context = {
    awsRequestId: requestId,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '10240',
    logGroupName: 'local',
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  } as Context;
  await mod.handler(event, context);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(
      JSON.stringify({ level: 'error', msg: 'invocation failed', error: String(error?.stack ?? error) }) +
        '\n',
    );
    process.exit(1);
  },
);
