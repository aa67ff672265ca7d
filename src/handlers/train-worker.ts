import type { Context } from 'aws-lambda';
import { loadConfig } from '../config';
import type { TrainWorkerEvent } from '../dispatch/job-dispatcher';
import { badInput } from '../errors';
import { configureMl } from '../ml/settings';
import { createServices } from '../services';
import { runTrainingInvocation } from '../services/training-units';
import { createMetrics, MetricUnit } from './metrics';
import { modelArtifacts } from '../services/model-artifacts';

const config = loadConfig();
configureMl(config.ml);
const services = createServices(config, { registration: modelArtifacts });
const metrics = createMetrics(config.stage);

/**
 * The training worker, invoked asynchronously with { jobId } (start the job) or { jobId, unit } (run one
 * cross-validation fold, or the served network, of a fanned-out job). It returns normally when the job ended,
 * was handed to the next invocation, or belongs to another live worker; it throws only for transient
 * failures, so that Lambda's retry resumes the job from its last checkpoint.
 */
export async function handler(event: TrainWorkerEvent, context: Context) {
  if (!event || typeof event.jobId !== 'string') throw badInput('The worker event needs a jobId.');
  if (event.unit !== undefined && (!Number.isInteger(event.unit) || event.unit < 0))
    throw badInput("The worker event's unit must be a non-negative integer.");
  const started = performance.now();
  let failed = true;
  try {
    const outcome = await runTrainingInvocation(services, {
      jobId: event.jobId,
      unit: event.unit,
      invocationId: context.awsRequestId,
      remainingMs: () => context.getRemainingTimeInMillis(),
    });
    failed = false;
    return { jobId: event.jobId, unit: event.unit ?? null, outcome };
  } finally {
    // trainingInvocations, trainingSeconds, and trainingFailures (an invocation Lambda will retry).
    if (metrics) {
      metrics.captureColdStartMetric();
      metrics.addMetric('trainingInvocations', MetricUnit.Count, 1);
      metrics.addMetric('trainingSeconds', MetricUnit.Seconds, (performance.now() - started) / 1000);
      if (failed) metrics.addMetric('trainingFailures', MetricUnit.Count, 1);
      metrics.publishStoredMetrics();
    }
  }
}
