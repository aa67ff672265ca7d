import type { LambdaClient } from '@aws-sdk/client-lambda';
import { unavailable } from '../errors';

/**
 * The Lambda client, loaded on the first dispatch: only starting training or bulk scoring needs it, and
 * its SDK took about 90 ms of every API cold start (docs/PERFORMANCE.md, "Packaged cold start, third pass").
 */
const lambdaSdk = () => import('@aws-sdk/client-lambda');

/**
 * Lambda's asynchronous invoke (InvocationType 'Event') of one worker function: Lambda queues the event,
 * retries a worker that crashes (maximumRetryAttempts in serverless.yml) and returns at once. Locally the
 * same call goes to the Lambda emulator on 127.0.0.1 (src/local/lambda-emulator.ts), so both paths run
 * this code. `what` names the worker in the error a caller sees when it cannot be started.
 */
export class LambdaAsyncInvoker<Event extends object> {
  private client?: LambdaClient;

  constructor(
    private readonly functionName: string,
    private readonly what: string,
    private readonly options: { region: string; endpoint?: string },
  ) {}

  async dispatch(event: Event): Promise<void> {
    try {
      const { InvokeCommand, LambdaClient } = await lambdaSdk();
      this.client ??= new LambdaClient({
        region: this.options.region,
        endpoint: this.options.endpoint,
        maxAttempts: 3,
        ...(this.options.endpoint ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
      });
      const result = await this.client.send(
        new InvokeCommand({
          FunctionName: this.functionName,
          InvocationType: 'Event',
          Payload: Buffer.from(JSON.stringify(event)),
        }),
      );
      if (result.StatusCode !== 202) throw new Error(`Invoke answered ${result.StatusCode}`);
    } catch (error) {
      throw unavailable(`The ${this.what} could not be started: ${(error as Error).message}`);
    }
  }
}
