import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { unavailable } from '../errors';

/**
 * The event the scoring worker receives: with `chunk`, score that chunk of the job; without it, plan the
 * job (list the images, write one manifest per chunk) and start the first chunks.
 */
export interface ScoringWorkerEvent {
  jobId: string;
  chunk?: number;
}

/** Starts a scoring worker invocation without waiting for it. */
export interface ScoringDispatcher {
  dispatch(event: ScoringWorkerEvent): Promise<void>;
}

/**
 * The same asynchronous invoke as the training dispatcher (InvocationType 'Event': Lambda queues the event
 * and retries a crashed worker with the same request id), aimed at the scoring worker function. Locally
 * the call goes to the Lambda emulator on 127.0.0.1.
 */
export class LambdaScoringDispatcher implements ScoringDispatcher {
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

  async dispatch(event: ScoringWorkerEvent): Promise<void> {
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
      throw unavailable(`The scoring worker could not be started: ${(error as Error).message}`);
    }
  }
}
