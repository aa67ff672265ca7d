import { LambdaAsyncInvoker } from './lambda-invoker';

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
 * The scoring worker, started by Lambda's asynchronous invoke (see LambdaAsyncInvoker): Lambda retries a
 * crashed worker with the same request id.
 */
export class LambdaScoringDispatcher
  extends LambdaAsyncInvoker<ScoringWorkerEvent>
  implements ScoringDispatcher
{
  constructor(functionName: string, options: { region: string; endpoint?: string }) {
    super(functionName, 'scoring worker', options);
  }
}
