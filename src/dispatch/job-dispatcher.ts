import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { unavailable } from '../errors';

/** The event the training worker receives. */
export interface TrainWorkerEvent {
  jobId: string;
}

/** Starts a training worker for a job without waiting for it. */
export interface JobDispatcher {
  dispatch(event: TrainWorkerEvent): Promise<void>;
}

/**
 * Lambda's asynchronous invoke (InvocationType 'Event'): Lambda queues the event, retries a worker that
 * crashes (maximumRetryAttempts in serverless.yml) and returns at once. Locally the same call goes to the
 * Lambda emulator on 127.0.0.1 (src/local/lambda-emulator.ts), so both paths run this code.
 */
export class LambdaJobDispatcher implements JobDispatcher {
  private readonly client: LambdaClient;

  constructor(
    private readonly functionName: string,
    options: { region: string; endpoint?: string },
  ) {
    this.client = new LambdaClient({
      region: options.region,
      endpoint: options.endpoint,
      maxAttempts: 3,
      ...(options.endpoint ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
    });
  }

  async dispatch(event: TrainWorkerEvent): Promise<void> {
    try {
      const result = await this.client.send(
        new InvokeCommand({
          FunctionName: this.functionName,
          InvocationType: 'Event',
          Payload: Buffer.from(JSON.stringify(event)),
        }),
      );
      if (result.StatusCode !== 202) throw new Error(`Invoke answered ${result.StatusCode}`);
    } catch (error) {
      throw unavailable(`The training worker could not be started: ${(error as Error).message}`);
    }
  }
}
