import { UnreachableCaseError } from '../errors';
import { planFolds } from '../ml/decisions';
import { serializeModel } from '../ml/models/model-io';
import type { TrainResult } from '../ml/training/train';
import type { Logger } from '../observability/log';
import { layout } from '../storage/layout';
import { FINAL_STATUSES, type JobRecord, type TrainingUnit } from './training';
import { JobCannotSucceed, loadJobData, type LoadedJobData } from './training-data';
import { JobLease, leaseLive, type LeaseSlot } from './training-lease';
import { finishTrainingJob, type FinalRun } from './training-finish';
import {
  failureOf,
  finishedJob,
  now,
  storedFold,
  unitName,
  UNITS_UPDATE_RETRIES,
  UnitRun,
  workerTimings,
} from './training-run';
import {
  recipeOf,
  runTrainingJob,
  type Outcome,
  type WorkerDeps,
  type WorkerInvocation,
} from './training-worker';

/**
 * Parallel folds (issue 16). A job whose fold concurrency is above 0 is cut into units, each run by its own
 * asynchronous worker invocation of the same function:
 *  - one unit per cross-validation fold of each seed (out-of-fold scores at jobs/<id>/folds/<seed>-<fold>.json,
 *    an epoch checkpoint beside it while it runs), and
 *  - one unit for the served network (checkpoint at jobs/<id>/checkpoint, the trained network at
 *    jobs/<id>/final/). It does not depend on the folds (it trains on the train split with early stopping on
 *    validation), so it runs beside them; it is the longest unit, so it is started first.
 * The job's first invocation (no unit in the event) writes the units into job.json and starts the first
 * `foldConcurrency` of them. A unit that finishes claims the next unstarted one in the same compare-and-swap
 * that marks it done, and starts it, so at most `foldConcurrency` run at once. Each unit holds its own
 * lease in job.json (a duplicate event finds it held and stops) and checks the job's cancel flag between
 * batches. A unit that fails is sent again; after MAX_UNIT_ATTEMPTS it fails the job, naming the fold.
 * The invocation that finishes the last unit fits the decisions on the folds' out-of-fold scores and
 * registers the version, once (training-finish.ts): it must first create jobs/<id>/finish.json (If-None-Match),
 * which only one invocation can do.
 */
export const MAX_UNIT_ATTEMPTS = 3;

export interface UnitInvocation extends WorkerInvocation {
  /** The unit to run; absent: start (or re-start) the job. */
  unit?: number;
}

export type UnitOutcome = Outcome | 'fanned-out' | 'unit-finished';

/** The training worker's entry: a unit, a fanned-out job's start, or a job one worker runs whole. */
export async function runTrainingInvocation(
  deps: WorkerDeps,
  invocation: UnitInvocation,
): Promise<UnitOutcome> {
  if (invocation.unit !== undefined) return runUnit(deps, invocation, invocation.unit);
  const job = (await deps.docs.get<JobRecord>(layout.job(invocation.jobId)))?.value;
  if (!job) {
    deps.log.warn('training worker: no such job', { jobId: invocation.jobId });
    return 'skipped';
  }
  // A job a single worker already began (before fold concurrency was turned on) goes on as it began.
  const fanOutNow =
    job.units !== undefined || (job.attempts === 0 && (deps.config?.foldConcurrency ?? 0) > 0);
  return fanOutNow ? fanOut(deps, invocation) : runTrainingJob(deps, invocation);
}

/** What the job's progress is: the mean of its units' (a unit that succeeded counts whole). */
function progressOfUnits(units: TrainingUnit[]): number {
  const share = (u: TrainingUnit) =>
    u.state === 'SUCCEEDED' ? 1 : Math.min(1, u.epoch / Math.max(1, u.epochs));
  return Math.min(0.99, units.reduce((sum, u) => sum + share(u), 0) / units.length);
}

function withUnit(job: JobRecord, index: number, patch: Partial<TrainingUnit>): JobRecord {
  const units = job.units!.map((u, i) => (i === index ? { ...u, ...patch } : u));
  return { ...job, units, progress: progressOfUnits(units), updatedAt: now() };
}

/** The job ends CANCELLED, and every unit that had not finished with it. */
function cancelAll(job: JobRecord): JobRecord {
  return finishedJob(job, 'CANCELLED', {
    units: job.units?.map((u) =>
      u.state === 'SUCCEEDED' || u.state === 'FAILED' ? u : { ...u, state: 'CANCELLED', lease: null },
    ),
  });
}

/** A unit's lease, in its entry of job.units. */
export function unitLease(index: number): LeaseSlot {
  return {
    owner: (job) => job.units?.[index]?.lease?.owner ?? null,
    set: (job, lease) => withUnit(job, index, { lease }),
  };
}

/** The units of a job: the served network first (the longest, on the critical path), then every fold. */
export function planUnits(job: JobRecord, recipe: { folds: number; seeds: number }): TrainingUnit[] {
  const unit = (kind: TrainingUnit['kind'], seed: number | null, fold: number | null): TrainingUnit => ({
    kind,
    seed,
    fold,
    state: 'PENDING',
    epoch: 0,
    epochs: job.config.epochs,
    attempts: 0,
    error: null,
    dispatched: false,
    handoff: null,
    lease: null,
  });
  const units = [unit('FINAL', null, null)];
  for (let s = 0; s < recipe.seeds; s++)
    for (let f = 0; f < recipe.folds; f++) units.push(unit('FOLD', job.config.seed + s, f));
  return units;
}

const leaseLapsed = (u: TrainingUnit) => !leaseLive(u.lease);

/**
 * The job's first invocation writes the units and starts the first `foldConcurrency`. A repeated event (or
 * a reader restarting a stalled job) re-sends the units that were handed out and have no live worker, and
 * finishes a job whose units all succeeded but whose finisher vanished.
 */
async function fanOut(deps: WorkerDeps, invocation: UnitInvocation): Promise<UnitOutcome> {
  const { docs, log } = deps;
  const jobKey = layout.job(invocation.jobId);
  const recipe = recipeOf(deps);
  const concurrency = Math.max(1, deps.config?.foldConcurrency ?? 1);
  let send: number[] = [];
  let skip: string | null = null;
  const { value: job } = await docs.update<JobRecord>(
    jobKey,
    (j) => {
      send = [];
      skip = null;
      if (FINAL_STATUSES.has(j.status)) {
        skip = `job already ${j.status}`;
        return j;
      }
      if (j.cancelRequested) return cancelAll(j);
      if (!j.units) {
        const units = planUnits(j, recipe);
        const first = Math.min(concurrency, units.length);
        for (let i = 0; i < first; i++) units[i].dispatched = true;
        send = units.slice(0, first).map((_, i) => i);
        const at = now();
        return {
          ...j,
          status: 'RUNNING',
          attempts: j.attempts + 1,
          startedAt: j.startedAt ?? at,
          updatedAt: at,
          units,
          unitConcurrency: concurrency,
          progress: 0,
        };
      }
      send = j.units.flatMap((u, i) =>
        u.dispatched && (u.state === 'PENDING' || (u.state === 'RUNNING' && leaseLapsed(u))) ? [i] : [],
      );
      return j;
    },
    { retries: UNITS_UPDATE_RETRIES },
  );
  if (skip) {
    log.info('training worker skipped', { jobId: job.id, reason: skip });
    return 'skipped';
  }
  if (job.status === 'CANCELLED') return 'cancelled';
  if (job.units!.every((u) => u.state === 'SUCCEEDED')) return finishTrainingJob(deps, invocation);
  for (const unit of send) await deps.dispatcher.dispatch({ jobId: job.id, unit });
  log.info('training fanned out', {
    jobId: job.id,
    units: job.units!.length,
    started: send,
    concurrency: job.unitConcurrency,
  });
  return 'fanned-out';
}

type UnitClaim =
  | { kind: 'run' }
  | { kind: 'cancelled' }
  | { kind: 'skip'; reason: string }
  /** Out of attempts: the unit, and the job with it, are now FAILED. */
  | { kind: 'exhausted' };

/**
 * Runs one unit: acquires its lease, trains (resuming from its checkpoint), stores its output. Then, while
 * time is left, goes on with the unit it claimed in the same invocation, as the scoring worker does with
 * chunks: no new process, no second snapshot load. A retry of this invocation re-runs the same chain,
 * skipping the units that succeeded.
 */
async function runUnit(
  deps: WorkerDeps,
  invocation: UnitInvocation,
  index: number,
  loaded?: LoadedJobData,
): Promise<UnitOutcome> {
  const log = deps.log.child({ jobId: invocation.jobId, invocationId: invocation.invocationId, unit: index });
  const { leaseMs, safetyMs } = workerTimings(deps);
  const jobKey = layout.job(invocation.jobId);
  const lease = new JobLease(
    deps.docs,
    jobKey,
    invocation.invocationId,
    leaseMs,
    unitLease(index),
    UNITS_UPDATE_RETRIES,
  );
  const claim = await claimUnit(lease, index);
  switch (claim.kind) {
    case 'exhausted': {
      const unit = lease.job.units?.[index];
      log.error('training unit failed for good', { unit: unit && unitName(unit), error: lease.job.error });
      return 'failed';
    }
    case 'skip':
      return goOnAfterSkip(deps, invocation, lease.job, index, claim.reason, loaded, log);
    case 'cancelled':
      return 'cancelled';
    case 'run':
      break;
    default:
      throw new UnreachableCaseError(claim);
  }
  const unit = lease.job.units![index];
  log.info('training unit started', { unit: unitName(unit), attempt: unit.attempts, epoch: unit.epoch });
  lease.startHeartbeat(log);
  try {
    const jobData = loaded ?? (await loadJobData(deps, lease.job, log));
    const run = new UnitRun({
      ...deps,
      log,
      lease,
      data: jobData.data,
      remainingMs: invocation.remainingMs,
      safetyMs,
      stopWhen: unitStopped,
    });
    const status =
      unit.kind === 'FOLD' ? await runFoldUnit(deps, run, index) : await runFinalUnit(deps, run, index);
    switch (status) {
      case 'paused':
        await lease.handOn(deps.dispatcher, { jobId: invocation.jobId, unit: index });
        log.info('training unit continues in a new invocation', { remainingMs: invocation.remainingMs() });
        return 'continued';
      case 'cancelled':
        await lease.write((j) =>
          FINAL_STATUSES.has(j.status)
            ? withUnit(j, index, { state: 'CANCELLED', lease: null })
            : cancelAll(j),
        );
        log.info('training unit stopped: the job was cancelled or failed', { status: lease.job.status });
        return 'cancelled';
      case 'completed':
        return await finishUnit(deps, invocation, lease, index, jobData, safetyMs, log);
      default:
        throw new UnreachableCaseError(status);
    }
  } catch (error) {
    return await recordUnitFailure(deps, lease, index, unit, error, log);
  } finally {
    lease.stopHeartbeat();
  }
}

/** Cancelled, or failed by another unit (or the job is gone): nothing this unit makes can be used. */
function unitStopped(job: JobRecord | null): boolean {
  return !job || job.cancelRequested || FINAL_STATUSES.has(job.status);
}

/** Takes the unit's lease and marks it RUNNING, counting the attempt; one out of attempts fails the job. */
function claimUnit(lease: JobLease, index: number): Promise<UnitClaim> {
  return lease.acquire<UnitClaim>((job) => {
    const unit = job.units?.[index];
    if (!unit) return { job, verdict: { kind: 'skip', reason: 'no such unit' } };
    if (FINAL_STATUSES.has(job.status))
      return { job, verdict: { kind: 'skip', reason: `job already ${job.status}` } };
    if (job.cancelRequested) return { job: cancelAll(job), verdict: { kind: 'cancelled' } };
    if (unit.state !== 'PENDING' && unit.state !== 'RUNNING')
      return { job, verdict: { kind: 'skip', reason: `unit already ${unit.state}` } };
    const holder = lease.heldElsewhere(unit.lease);
    if (holder) return { job, verdict: { kind: 'skip', reason: `lease held by ${holder}` } };
    // A unit whose workers keep dying (each death is an attempt) fails like one that keeps throwing.
    if (unit.attempts >= MAX_UNIT_ATTEMPTS) {
      const failed = failJob(job, index, unit.error ?? 'its worker stopped without finishing');
      return { job: failed, verdict: { kind: 'exhausted' } };
    }
    const running = withUnit(job, index, {
      state: 'RUNNING',
      attempts: unit.attempts + 1,
      dispatched: true,
      lease: lease.fresh(),
    });
    return { job: running, verdict: { kind: 'run' } };
  });
}

/**
 * A unit this invocation may not run. A retry of an invocation that went on with the unit it claimed goes on
 * with it again; a retry of the one that finished the last unit, which died before it registered the version,
 * finishes the job; anything else is skipped.
 */
async function goOnAfterSkip(
  deps: WorkerDeps,
  invocation: UnitInvocation,
  job: JobRecord,
  index: number,
  reason: string,
  loaded: LoadedJobData | undefined,
  log: Logger,
): Promise<UnitOutcome> {
  const unit = job.units?.[index];
  const next = unit?.state === 'SUCCEEDED' ? (unit.handoff ?? null) : null;
  const chained = next !== null ? job.units![next] : null;
  if (
    chained &&
    chained.lease?.owner === invocation.invocationId &&
    (chained.state === 'RUNNING' || chained.state === 'PENDING')
  )
    return runUnit(deps, { ...invocation, unit: next! }, next!, loaded);
  if (
    unit?.state === 'SUCCEEDED' &&
    job.units!.every((u) => u.state === 'SUCCEEDED') &&
    job.status === 'RUNNING'
  )
    return finishTrainingJob(deps, invocation);
  log.info('training unit skipped', { reason });
  return 'skipped';
}

/**
 * The unit SUCCEEDED: marks it, and claims the next unit nobody has started, in one swap (a retry re-sends
 * the same one); runs that one here while time is left, else sends it. The last unit finishes the job.
 */
async function finishUnit(
  deps: WorkerDeps,
  invocation: UnitInvocation,
  lease: JobLease,
  index: number,
  loaded: LoadedJobData,
  safetyMs: number,
  log: Logger,
): Promise<UnitOutcome> {
  const done = await lease.write((j) => {
    let next = j.units![index].handoff ?? null;
    const units = j.units!.map((u) => ({ ...u }));
    if (next === null && !j.cancelRequested) {
      const free = units.findIndex((u) => !u.dispatched);
      if (free >= 0) {
        units[free].dispatched = true;
        next = free;
      }
    }
    units[index] = { ...units[index], state: 'SUCCEEDED', lease: null, error: null, handoff: next };
    return { ...j, units, progress: progressOfUnits(units), updatedAt: now() };
  });
  const handoff = done.units![index].handoff;
  log.info('training unit finished', { unit: unitName(done.units![index]), next: handoff });
  if (handoff != null && done.units![handoff].state === 'PENDING') {
    if (invocation.remainingMs() > 2 * safetyMs) {
      lease.stopHeartbeat();
      return await runUnit(deps, { ...invocation, unit: handoff }, handoff, loaded);
    }
    await deps.dispatcher.dispatch({ jobId: invocation.jobId, unit: handoff });
  }
  if (done.units!.every((u) => u.state === 'SUCCEEDED'))
    return await finishTrainingJob(deps, invocation, loaded);
  return 'unit-finished';
}

/** A lost lease stops quietly; a failure sends the unit again, or fails the job after MAX_UNIT_ATTEMPTS. */
async function recordUnitFailure(
  deps: WorkerDeps,
  lease: JobLease,
  index: number,
  unit: TrainingUnit,
  error: unknown,
  log: Logger,
): Promise<UnitOutcome> {
  const failure = failureOf(error);
  switch (failure.kind) {
    case 'lease-lost':
      log.warn('training unit lost its lease; stopping', { newOwner: failure.owner });
      return 'skipped';
    case 'failed': {
      const message = failure.message ?? `${(error as Error)?.message ?? String(error)}`;
      log.error('training unit failed', { unit: unitName(unit), attempt: unit.attempts, error });
      let retry = false;
      await lease
        .write((j) => {
          retry = failure.retryable && j.units![index].attempts < MAX_UNIT_ATTEMPTS;
          return retry
            ? withUnit(j, index, { state: 'PENDING', lease: null, error: message })
            : failJob(j, index, message);
        })
        .catch((e) => log.error('could not record the unit failure', { error: e }));
      if (retry) await deps.dispatcher.dispatch({ jobId: lease.job.id, unit: index });
      return 'failed';
    }
    default:
      throw new UnreachableCaseError(failure);
  }
}

/**
 * The unit FAILED, and the job with it, naming the unit; the other unfinished units are CANCELLED and lose
 * their leases, so their workers stop at their next write or cancel check.
 */
function failJob(job: JobRecord, index: number, message: string): JobRecord {
  const unit = job.units![index];
  const stopped = cancelAll(job);
  const units = stopped.units!.map((u, i) =>
    i === index ? { ...unit, state: 'FAILED' as const, lease: null, error: message } : u,
  );
  return {
    ...stopped,
    units,
    status: 'FAILED',
    error: `Training ${unitName(unit)} failed after ${unit.attempts} attempt(s): ${message}`,
  };
}

/** One fold, planned as the whole-job worker plans it: the folds and seeds are the job's, the cells the snapshot's. */
async function runFoldUnit(deps: WorkerDeps, run: UnitRun, index: number): Promise<TrainResult['status']> {
  const { lease, data } = run;
  const job = lease.job;
  const unit = job.units![index];
  const at = { seed: unit.seed!, fold: unit.fold! };
  if (await storedFold(deps.docs, job.id, at)) return 'completed';
  const foldUnits = job.units!.filter((u) => u.kind === 'FOLD');
  const recipe = {
    folds: new Set(foldUnits.map((u) => u.fold)).size,
    seeds: new Set(foldUnits.map((u) => u.seed)).size,
  };
  const cells = [...data.train, ...data.validation];
  const task = planFolds(cells, job.config, recipe).find((t) => t.seed === at.seed && t.fold === at.fold);
  if (!task) throw new JobCannotSucceed(`The job's plan has no ${unitName(unit)}.`);
  const fold = await run.trainFold(task, new Map(cells.map((c) => [c.id, c])), {
    afterCheckpoint: async (cp) => void (await lease.write((j) => withUnit(j, index, { epoch: cp.epoch }))),
  });
  return fold.status;
}

/** The served network, as the whole-job worker trains it; stored at jobs/<id>/final/ for the finisher. */
async function runFinalUnit(deps: WorkerDeps, run: UnitRun, index: number): Promise<TrainResult['status']> {
  const { lease } = run;
  const job = lease.job;
  if (await deps.store.head(layout.jobFinalModel(job.id, 'result.json'))) return 'completed';
  const result = await run.trainServedNetwork({
    // The job's epoch and history stay the served network's, as when one worker runs the job.
    afterCheckpoint: async (cp) =>
      void (await lease.write((j) => ({
        ...withUnit(j, index, { epoch: cp.epoch }),
        epoch: cp.epoch,
        history: cp.history,
      }))),
  });
  if (result.status !== 'completed') return result.status;
  const model = result.model!;
  try {
    const bundle = await serializeModel(model);
    await deps.store.put(layout.jobFinalModel(job.id, 'weights.bin'), bundle.weights, {
      contentType: 'application/octet-stream',
    });
    await deps.store.put(layout.jobFinalModel(job.id, 'model.json'), JSON.stringify(bundle.modelJson), {
      contentType: 'application/json',
    });
    // Written last: its presence says the network above is complete.
    const { history, bestEpoch, trainingRuntime } = result;
    await deps.docs.put<FinalRun>(layout.jobFinalModel(job.id, 'result.json'), {
      history,
      bestEpoch,
      trainingRuntime,
    });
  } finally {
    model.dispose();
  }
  return 'completed';
}
