import type { Context } from 'aws-lambda';
import { loadConfig } from '../config';
import type { ScoringWorkerEvent } from '../dispatch/scoring-dispatcher';
import { badInput } from '../errors';
import { configureMl } from '../ml/settings';
import { createServices } from '../services';
import { runScoringInvocation } from '../services/scoring-worker';

const config = loadConfig();
configureMl(config.ml);
const services = createServices(config);

/**
 * The bulk scoring worker, invoked asynchronously with { jobId } (plan the job) or { jobId, chunk }
 * (score one chunk). It throws only for transient failures, so that Lambda's retry re-runs the same
 * event, which picks up from the chunk's last checkpoint.
 */
export async function handler(event: ScoringWorkerEvent, context: Context) {
  if (!event || typeof event.jobId !== 'string') throw badInput('The scoring event needs a jobId.');
  const outcome = await runScoringInvocation(
    {
      store: services.store,
      docs: services.docs,
      models: services.models,
      dispatcher: services.scoringDispatcher,
      log: services.log,
      limits: {
        uploadBytes: config.limits.uploadBytes,
        imageSide: config.limits.imageSide,
        scoringImages: config.scoring.maxImages,
      },
      safetyMs: config.workerSafetyMs,
    },
    {
      jobId: event.jobId,
      chunk: event.chunk,
      invocationId: context.awsRequestId,
      remainingMs: () => context.getRemainingTimeInMillis(),
    },
  );
  return { jobId: event.jobId, chunk: event.chunk ?? null, outcome };
}
