import { LymphoscopeError } from '../errors';
import { planFolds, runFold, type FoldOutput } from '../ml/decisions';
import { augmenterFor } from '../ml/image/preprocess';
import { loadModel, serializeModel, type ModelBundle } from '../ml/models/model-io';
import { initRuntime } from '../ml/runtime';
import { deserializeCheckpoint, serializeCheckpoint, train, type TrainResult } from '../ml/training/train';
import { layout } from '../storage/layout';
import { FINAL_STATUSES, type JobRecord, type Snapshot, type TrainingUnit } from './training';
import {
  JobCannotSucceed,
  LeaseLost,
  loadSnapshot,
  recipeOf,
  registerTrainedModel,
  runTrainingJob,
  type LoadedSnapshot,
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
 * registers the version, once: it must first create jobs/<id>/finish.json (If-None-Match), which only one
 * invocation can do.
 */
export const MAX_UNIT_ATTEMPTS = 3;
/** Every unit writes job.json; with many running, a compare-and-swap may lose a few races in a row. */
const UPDATE_RETRIES = 60;
const PROGRESS_EVERY_MS = 3_000;
const LEASE_MS = 60_000;
const SAFETY_MS = 50_000;

export interface UnitInvocation extends WorkerInvocation {
  /** The unit to run; absent: start (or re-start) the job. */
  unit?: number;
}

export type UnitOutcome = Outcome | 'fanned-out' | 'unit-finished';

const now = () => new Date().toISOString();

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
  const at = now();
  return {
    ...job,
    status: 'CANCELLED',
    lease: null,
    finishedAt: at,
    updatedAt: at,
    units: job.units?.map((u) =>
      u.state === 'SUCCEEDED' || u.state === 'FAILED' ? u : { ...u, state: 'CANCELLED', lease: null },
    ),
  };
}

/** How a unit is named in the job's error and in logs. */
export function unitName(unit: Pick<TrainingUnit, 'kind' | 'seed' | 'fold'>): string {
  return unit.kind === 'FINAL' ? 'the served network' : `fold ${unit.fold} of seed ${unit.seed}`;
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

const leaseLapsed = (u: TrainingUnit) => !u.lease || Date.parse(u.lease.expiresAt) < Date.now();

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
    { retries: UPDATE_RETRIES },
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

/** What every unit of a job loads first; a worker that goes on with the next unit keeps it. */
interface LoadedJobData {
  snapshot: Snapshot;
  data: LoadedSnapshot;
  runtime: { backend: string };
}

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
  const { docs } = deps;
  const log = deps.log.child({ jobId: invocation.jobId, invocationId: invocation.invocationId, unit: index });
  const leaseMs = deps.leaseMs ?? deps.config?.workerLeaseMs ?? LEASE_MS;
  const safetyMs = deps.config?.workerSafetyMs ?? SAFETY_MS;
  const jobKey = layout.job(invocation.jobId);
  const me = invocation.invocationId;
  const lease = () => ({ owner: me, expiresAt: new Date(Date.now() + leaseMs).toISOString() });

  let skip: string | null = null;
  let exhausted = false;
  const acquired = await docs.update<JobRecord>(
    jobKey,
    (j) => {
      skip = null;
      exhausted = false;
      const unit = j.units?.[index];
      if (!unit) {
        skip = 'no such unit';
        return j;
      }
      if (FINAL_STATUSES.has(j.status)) {
        skip = `job already ${j.status}`;
        return j;
      }
      if (j.cancelRequested) return cancelAll(j);
      if (unit.state !== 'PENDING' && unit.state !== 'RUNNING') {
        skip = `unit already ${unit.state}`;
        return j;
      }
      if (unit.lease && !leaseLapsed(unit) && unit.lease.owner !== me) {
        skip = `lease held by ${unit.lease.owner}`;
        return j;
      }
      // A unit whose workers keep dying (each death is an attempt) fails like one that keeps throwing.
      if (unit.attempts >= MAX_UNIT_ATTEMPTS) {
        exhausted = true;
        return failJob(j, index, unit.error ?? 'its worker stopped without finishing');
      }
      return withUnit(j, index, {
        state: 'RUNNING',
        attempts: unit.attempts + 1,
        dispatched: true,
        lease: lease(),
      });
    },
    { retries: UPDATE_RETRIES },
  );
  let job = acquired.value;
  const unit = job.units?.[index];
  if (exhausted) {
    log.error('training unit failed for good', { unit: unit && unitName(unit), error: job.error });
    return 'failed';
  }
  if (skip) {
    // A retry of an invocation that went on with the unit it claimed: go on with it again.
    const next = unit?.state === 'SUCCEEDED' ? (unit.handoff ?? null) : null;
    const chained = next !== null ? job.units![next] : null;
    if (
      chained &&
      chained.lease?.owner === me &&
      (chained.state === 'RUNNING' || chained.state === 'PENDING')
    )
      return runUnit(deps, { ...invocation, unit: next! }, next!, loaded);
    // A retry of the invocation that finished the last unit, which died before it registered the version.
    if (
      unit?.state === 'SUCCEEDED' &&
      job.units!.every((u) => u.state === 'SUCCEEDED') &&
      job.status === 'RUNNING'
    )
      return finishTrainingJob(deps, invocation);
    log.info('training unit skipped', { reason: skip });
    return 'skipped';
  }
  if (job.status === 'CANCELLED') return 'cancelled';
  const current = unit!;
  log.info('training unit started', {
    unit: unitName(current),
    attempt: current.attempts,
    epoch: current.epoch,
  });

  /** Compare-and-swap on job.json that also proves this invocation still holds the unit's lease. */
  const writeUnit = async (mutate: (j: JobRecord) => JobRecord): Promise<JobRecord> => {
    const { value } = await docs.update<JobRecord>(
      jobKey,
      (j) => {
        const owner = j.units?.[index]?.lease?.owner ?? null;
        if (owner !== me) throw new LeaseLost(owner);
        return mutate(j);
      },
      { retries: UPDATE_RETRIES },
    );
    job = value;
    return value;
  };
  const heartbeat = setInterval(
    () => {
      writeUnit((j) => withUnit(j, index, { lease: lease() })).catch((error) => {
        if (!(error instanceof LeaseLost)) log.warn('unit lease renewal failed', { error: String(error) });
      });
    },
    Math.max(250, leaseMs / 3),
  );

  try {
    const { runtime, snapshot, data } = loaded ?? (await loadJobData(deps, job));

    let lastCancelCheck = 0;
    let stopRequested = false;
    let epochStarted = Date.now();
    let longestEpochMs = 0;
    const shouldCancel = async () => {
      if (stopRequested) return true;
      if (Date.now() - lastCancelCheck < PROGRESS_EVERY_MS) return false;
      lastCancelCheck = Date.now();
      const latest = (await docs.get<JobRecord>(jobKey))?.value;
      const owner = latest?.units?.[index]?.lease?.owner ?? null;
      if (owner !== me) throw new LeaseLost(owner);
      // Cancelled, or failed by another unit: nothing this unit makes can be used.
      stopRequested = !latest || latest.cancelRequested || FINAL_STATUSES.has(latest.status);
      return stopRequested;
    };
    const shouldPause = () => invocation.remainingMs() < longestEpochMs * 1.5 + safetyMs;
    const epochDone = () => {
      longestEpochMs = Math.max(longestEpochMs, Date.now() - epochStarted);
      epochStarted = Date.now();
    };

    let status: TrainResult['status'];
    if (current.kind === 'FOLD') {
      status = await runFoldUnit(deps, job, current, data, {
        shouldCancel,
        shouldPause,
        epochDone,
        writeUnit,
        index,
      });
    } else {
      status = await runFinalUnit(deps, job, data, {
        shouldCancel,
        shouldPause,
        epochDone,
        writeUnit,
        index,
      });
    }
    if (status === 'paused') {
      await writeUnit((j) => withUnit(j, index, { lease: null }));
      await deps.dispatcher.dispatch({ jobId: job.id, unit: index });
      log.info('training unit continues in a new invocation', { remainingMs: invocation.remainingMs() });
      return 'continued';
    }
    if (status === 'cancelled') {
      await writeUnit((j) =>
        FINAL_STATUSES.has(j.status) ? withUnit(j, index, { state: 'CANCELLED', lease: null }) : cancelAll(j),
      );
      log.info('training unit stopped: the job was cancelled or failed', { status: job.status });
      return 'cancelled';
    }

    // Done: mark it, and claim the next unit nobody has started, in one swap (a retry re-sends the same one).
    const done = await writeUnit((j) => {
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
    log.info('training unit finished', { unit: unitName(current), next: handoff });
    if (handoff != null && done.units![handoff].state === 'PENDING') {
      if (invocation.remainingMs() > 2 * safetyMs) {
        clearInterval(heartbeat);
        return await runUnit(deps, { ...invocation, unit: handoff }, handoff, { snapshot, data, runtime });
      }
      await deps.dispatcher.dispatch({ jobId: job.id, unit: handoff });
    }
    if (done.units!.every((u) => u.state === 'SUCCEEDED'))
      return await finishTrainingJob(deps, invocation, { snapshot, data, runtime });
    return 'unit-finished';
  } catch (error) {
    if (error instanceof LeaseLost) {
      log.warn('training unit lost its lease; stopping', { newOwner: error.owner });
      return 'skipped';
    }
    if (error instanceof LymphoscopeError && error.code === 'UNAVAILABLE') throw error; // Lambda retries.
    const message =
      error instanceof JobCannotSucceed || error instanceof LymphoscopeError
        ? error.message
        : `${(error as Error)?.message ?? String(error)}`;
    log.error('training unit failed', { unit: unitName(current), attempt: current.attempts, error });
    let retry = false;
    await writeUnit((j) => {
      const u = j.units![index];
      retry = !(error instanceof JobCannotSucceed) && u.attempts < MAX_UNIT_ATTEMPTS;
      return retry
        ? withUnit(j, index, { state: 'PENDING', lease: null, error: message })
        : failJob(j, index, message);
    }).catch((e) => log.error('could not record the unit failure', { error: e }));
    if (retry) await deps.dispatcher.dispatch({ jobId: invocation.jobId, unit: index });
    return 'failed';
  } finally {
    clearInterval(heartbeat);
  }
}

async function loadJobData(deps: WorkerDeps, job: JobRecord): Promise<LoadedJobData> {
  const runtime = await initRuntime();
  const snapshot = (await deps.docs.get<Snapshot>(layout.snapshot(job.datasetId, job.snapshotId)))?.value;
  if (!snapshot) throw new JobCannotSucceed(`Snapshot ${job.snapshotId} is missing.`);
  return { runtime, snapshot, data: await loadSnapshot(deps.store, snapshot, job.config.inputSize) };
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

interface UnitHooks {
  index: number;
  shouldCancel: () => Promise<boolean>;
  shouldPause: () => boolean;
  epochDone: () => void;
  writeUnit: (mutate: (j: JobRecord) => JobRecord) => Promise<JobRecord>;
}

async function runFoldUnit(
  deps: WorkerDeps,
  job: JobRecord,
  unit: TrainingUnit,
  data: LoadedSnapshot,
  hooks: UnitHooks,
): Promise<TrainResult['status']> {
  const { store, docs } = deps;
  const seed = unit.seed!;
  const fold = unit.fold!;
  const foldKey = layout.jobFold(job.id, seed, fold);
  if (await docs.get<FoldOutput>(foldKey)) return 'completed';
  // The same plan the whole-job worker makes: the folds and seeds are the job's, the cells the snapshot's.
  const foldUnits = job.units!.filter((u) => u.kind === 'FOLD');
  const recipe = {
    folds: new Set(foldUnits.map((u) => u.fold)).size,
    seeds: new Set(foldUnits.map((u) => u.seed)).size,
  };
  const cells = [...data.train, ...data.validation];
  const task = planFolds(cells, job.config, recipe).find((t) => t.seed === seed && t.fold === fold);
  if (!task) throw new JobCannotSucceed(`The job's plan has no ${unitName(unit)}.`);
  const cpKey = layout.jobFoldCheckpoint(job.id, seed, fold);
  const cpObject = await store.get(cpKey);
  const run = await runFold(task, new Map(cells.map((c) => [c.id, c])), job.config, {
    domain: data.domain,
    resumeFrom: cpObject ? deserializeCheckpoint(cpObject.body) : undefined,
    onCheckpoint: async (cp) => {
      hooks.epochDone();
      await store.put(cpKey, serializeCheckpoint(cp), { contentType: 'application/octet-stream' });
      await hooks.writeUnit((j) => withUnit(j, hooks.index, { epoch: cp.epoch }));
    },
    shouldCancel: hooks.shouldCancel,
    shouldPause: hooks.shouldPause,
  });
  if (run.status !== 'completed') return run.status;
  await docs.put(foldKey, run.output);
  await store.delete(cpKey).catch(() => undefined);
  return 'completed';
}

interface FinalRun {
  history: TrainResult['history'];
  bestEpoch: number;
  trainingRuntime: TrainResult['trainingRuntime'];
}

/** The served network, as the whole-job worker trains it; stored at jobs/<id>/final/ for the finisher. */
async function runFinalUnit(
  deps: WorkerDeps,
  job: JobRecord,
  data: LoadedSnapshot,
  hooks: UnitHooks,
): Promise<TrainResult['status']> {
  const { store, docs } = deps;
  if (await store.head(layout.jobFinalModel(job.id, 'result.json'))) return 'completed';
  const checkpoint = await store.get(layout.jobCheckpoint(job.id));
  const result = await train({
    config: job.config,
    train: data.train,
    validation: data.validation,
    resumeFrom: checkpoint ? deserializeCheckpoint(checkpoint.body) : undefined,
    augment: augmenterFor(job.config),
    onCheckpoint: async (cp) => {
      hooks.epochDone();
      await store.put(layout.jobCheckpoint(job.id), serializeCheckpoint(cp), {
        contentType: 'application/octet-stream',
      });
      // The job's epoch and history stay the served network's, as when one worker runs the job.
      await hooks.writeUnit((j) => ({
        ...withUnit(j, hooks.index, { epoch: cp.epoch }),
        epoch: cp.epoch,
        history: cp.history,
      }));
    },
    shouldCancel: hooks.shouldCancel,
    shouldPause: hooks.shouldPause,
  });
  if (result.status !== 'completed') return result.status;
  const model = result.model!;
  try {
    const bundle = await serializeModel(model);
    await store.put(layout.jobFinalModel(job.id, 'weights.bin'), bundle.weights, {
      contentType: 'application/octet-stream',
    });
    await store.put(layout.jobFinalModel(job.id, 'model.json'), JSON.stringify(bundle.modelJson), {
      contentType: 'application/json',
    });
    // Written last: its presence says the network above is complete.
    const run: FinalRun = {
      history: result.history,
      bestEpoch: result.bestEpoch,
      trainingRuntime: result.trainingRuntime,
    };
    await docs.put(layout.jobFinalModel(job.id, 'result.json'), run);
  } finally {
    model.dispose();
  }
  return 'completed';
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
): Promise<UnitOutcome> {
  const { docs, store } = deps;
  const log = deps.log.child({ jobId: invocation.jobId, invocationId: invocation.invocationId });
  const claimKey = layout.jobFinish(invocation.jobId);
  const mine: FinishClaim = { owner: invocation.invocationId, at: now() };
  let claim: { value: FinishClaim; etag: string };
  try {
    claim = { value: mine, etag: await docs.create(claimKey, mine) };
  } catch (error) {
    if (!(error instanceof LymphoscopeError) || error.code !== 'CONFLICT') throw error;
    const found = await docs.get<FinishClaim>(claimKey);
    if (!found) return 'skipped';
    claim = found;
    if (found.value.owner !== invocation.invocationId) {
      if (Date.parse(found.value.at) > Date.now() - FINISH_STALL_MS) {
        log.info('another invocation finishes this job', { owner: found.value.owner });
        return 'skipped';
      }
      try {
        claim = { value: mine, etag: await docs.replace(claimKey, mine, found.etag) };
      } catch (lost) {
        if (lost instanceof LymphoscopeError) return 'skipped';
        throw lost;
      }
    }
  }

  const jobKey = layout.job(invocation.jobId);
  const job = (await docs.get<JobRecord>(jobKey))?.value;
  if (!job || FINAL_STATUSES.has(job.status)) return 'skipped';
  const succeed = (modelVersion: string, run: FinalRun) =>
    docs.update<JobRecord>(
      jobKey,
      (j) =>
        FINAL_STATUSES.has(j.status)
          ? j
          : {
              ...j,
              status: 'SUCCEEDED',
              modelVersion,
              progress: 1,
              etaSeconds: 0,
              epoch: run.history.length,
              history: run.history,
              lease: null,
              finishedAt: now(),
              updatedAt: now(),
            },
      { retries: UPDATE_RETRIES },
    );
  const run = (await docs.get<FinalRun>(layout.jobFinalModel(job.id, 'result.json')))?.value;
  if (!run) throw new Error(`Job ${job.id}: the served network's result is missing`);
  if (claim.value.modelVersion) {
    await succeed(claim.value.modelVersion, run);
    return 'succeeded';
  }

  const runtime = loaded?.runtime ?? (await initRuntime());
  const snapshot =
    loaded?.snapshot ?? (await docs.get<Snapshot>(layout.snapshot(job.datasetId, job.snapshotId)))?.value;
  if (!snapshot) throw new Error(`Job ${job.id}: snapshot ${job.snapshotId} is missing`);
  const data = loaded?.data ?? (await loadSnapshot(store, snapshot, job.config.inputSize));
  const folds: FoldOutput[] = [];
  for (const unit of job.units!.filter((u) => u.kind === 'FOLD')) {
    const output = (await docs.get<FoldOutput>(layout.jobFold(job.id, unit.seed!, unit.fold!)))?.value;
    if (!output) throw new Error(`Job ${job.id}: ${unitName(unit)} has no output`);
    folds.push(output);
  }
  const modelJson = await store.get(layout.jobFinalModel(job.id, 'model.json'));
  const weights = await store.get(layout.jobFinalModel(job.id, 'weights.bin'));
  if (!modelJson || !weights) throw new Error(`Job ${job.id}: the served network is missing`);
  const bundle: ModelBundle = {
    modelJson: JSON.parse(modelJson.body.toString('utf8')) as ModelBundle['modelJson'],
    weights: weights.body,
  };
  const model = await loadModel(bundle);
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
    await docs.replace(claimKey, { ...claim.value, modelVersion: card.version }, claim.etag);
    await succeed(card.version, run);
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
