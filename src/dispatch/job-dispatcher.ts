import { LambdaAsyncInvoker } from './lambda-invoker';

/** The event the training worker receives. */
export interface TrainWorkerEvent {
  jobId: string;
  /**
   * With it: run this unit (a cross-validation fold, or the served network) of a fanned-out job. Without
   * it: start the job (fan it out, or run it whole when fold concurrency is 0).
   */
  unit?: number;
}

/** Starts a training worker for a job without waiting for it. */
export interface JobDispatcher {
  dispatch(event: TrainWorkerEvent): Promise<void>;
}

/** The training worker, started by Lambda's asynchronous invoke (see LambdaAsyncInvoker). */
export class LambdaJobDispatcher extends LambdaAsyncInvoker<TrainWorkerEvent> implements JobDispatcher {
  constructor(functionName: string, options: { region: string; endpoint?: string }) {
    super(functionName, 'training worker', options);
  }
}
