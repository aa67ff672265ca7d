import { LymphoscopeError } from '../errors';
import type { FoldOutput } from '../ml/decisions';
import { loadModel } from '../ml/models/model-io';
import type { ModelBundle } from '../ml/models/model-bundle';
import type { TrainResult } from '../ml/training/train';
import type { Logger } from '../observability/log';
import { layout } from '../storage/layout';
import { FINAL_STATUSES, type JobRecord } from './training';
import { loadJobData, type LoadedJobData } from './training-data';
import { finishedJob, now, storedFold, unitName, UNITS_UPDATE_RETRIES } from './training-run';
import { registerTrainedModel, type WorkerDeps, type WorkerInvocation } from './training-worker';

/**
 * The end of a fanned-out job (src/services/training-units.ts): once every unit succeeded, one invocation
 * registers the version made of the served network and the folds' out-of-fold outputs.
 */

/** What the FINAL unit stores beside the served network (jobs/<id>/final/result.json), written last. */
export interface FinalRun {
  history: TrainResult['history'];
  bestEpoch: number;
  trainingRuntime: TrainResult['trainingRuntime'];
}

interface FinishClaim {
  owner: string;
  at: string;
  modelVersion?: string;
}

/** A finisher's claim this old belongs to an invocation that died after its retries; another takes over. */
const FINISH_STALL_MS = 15 * 60_000;

/**
 * Fits the decisions on every fold's out-of-fold scores, evaluates the served network and registers the
 * version, once per job: the invocation that creates jobs/<id>/finish.json (If-None-Match) does it; any
 * other returns 'skipped'. A retry of the winner (same invocation id) finds its own claim and goes on; if
 * the claim already names the version it registered, it only marks the job SUCCEEDED.
 */
export async function finishTrainingJob(
  deps: WorkerDeps,
  invocation: Pick<WorkerInvocation, 'jobId' | 'invocationId'>,
  loaded?: LoadedJobData,
): Promise<'skipped' | 'succeeded'> {
  const { docs, store } = deps;
  const log = deps.log.child({ jobId: invocation.jobId, invocationId: invocation.invocationId });
  const claim = await claimFinish(deps, invocation, log);
  if (!claim) return 'skipped';
  const job = (await docs.get<JobRecord>(layout.job(invocation.jobId)))?.value;
  if (!job || FINAL_STATUSES.has(job.status)) return 'skipped';
  const run = (await docs.get<FinalRun>(layout.jobFinalModel(job.id, 'result.json')))?.value;
  if (!run) throw new Error(`Job ${job.id}: the served network's result is missing`);
  if (claim.value.modelVersion) {
    await markSucceeded(deps, job.id, claim.value.modelVersion, run);
    return 'succeeded';
  }

  const { snapshot, data, runtime } = loaded ?? (await loadJobData(deps, job, log));
  const folds = await storedFoldsOf(deps, job);
  const model = await loadModel(await servedNetworkOf(store, job.id));
  try {
    const card = await registerTrainedModel(deps, {
      job,
      snapshot,
      data,
      folds,
      model,
      result: run,
      runtime,
    });
    // Remembered before the job is marked, so a retry after a crash here does not register a second version.
    await docs.replace(layout.jobFinish(job.id), { ...claim.value, modelVersion: card.version }, claim.etag);
    await markSucceeded(deps, job.id, card.version, run);
    log.info('training succeeded', {
      modelVersion: card.version,
      units: job.units!.length,
      testMetrics: card.testMetrics,
    });
    return 'succeeded';
  } finally {
    model.dispose();
  }
}

/**
 * Creates jobs/<id>/finish.json, or finds this invocation's own claim there (a retry), or takes over one
 * that stalled; null when another invocation finishes the job.
 */
async function claimFinish(
  { docs }: WorkerDeps,
  invocation: Pick<WorkerInvocation, 'jobId' | 'invocationId'>,
  log: Logger,
): Promise<{ value: FinishClaim; etag: string } | null> {
  const claimKey = layout.jobFinish(invocation.jobId);
  const mine: FinishClaim = { owner: invocation.invocationId, at: now() };
  try {
    return { value: mine, etag: await docs.create(claimKey, mine) };
  } catch (error) {
    if (!(error instanceof LymphoscopeError) || error.code !== 'CONFLICT') throw error;
  }
  const found = await docs.get<FinishClaim>(claimKey);
  if (!found || found.value.owner === invocation.invocationId) return found;
  if (Date.parse(found.value.at) > Date.now() - FINISH_STALL_MS) {
    log.info('another invocation finishes this job', { owner: found.value.owner });
    return null;
  }
  try {
    return { value: mine, etag: await docs.replace(claimKey, mine, found.etag) };
  } catch (lost) {
    if (lost instanceof LymphoscopeError) return null;
    throw lost;
  }
}

async function markSucceeded(deps: WorkerDeps, jobId: string, modelVersion: string, run: FinalRun) {
  const fields = {
    modelVersion,
    progress: 1,
    etaSeconds: 0,
    epoch: run.history.length,
    history: run.history,
  };
  await deps.docs.update<JobRecord>(
    layout.job(jobId),
    (j) => (FINAL_STATUSES.has(j.status) ? j : finishedJob(j, 'SUCCEEDED', fields)),
    { retries: UNITS_UPDATE_RETRIES },
  );
}

/** Every fold's out-of-fold output, in the order of the job's units. */
async function storedFoldsOf(deps: WorkerDeps, job: JobRecord): Promise<FoldOutput[]> {
  const folds: FoldOutput[] = [];
  for (const unit of job.units!.filter((u) => u.kind === 'FOLD')) {
    const output = await storedFold(deps.docs, job.id, { seed: unit.seed!, fold: unit.fold! });
    if (!output) throw new Error(`Job ${job.id}: ${unitName(unit)} has no output`);
    folds.push(output);
  }
  return folds;
}

/** The served network the FINAL unit stored at jobs/<id>/final/. */
async function servedNetworkOf(store: WorkerDeps['store'], jobId: string): Promise<ModelBundle> {
  const modelJson = await store.get(layout.jobFinalModel(jobId, 'model.json'));
  const weights = await store.get(layout.jobFinalModel(jobId, 'weights.bin'));
  if (!modelJson || !weights) throw new Error(`Job ${jobId}: the served network is missing`);
  return {
    modelJson: JSON.parse(modelJson.body.toString('utf8')) as ModelBundle['modelJson'],
    weights: weights.body,
  };
}
