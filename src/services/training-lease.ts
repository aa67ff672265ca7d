import type { JobDispatcher, TrainWorkerEvent } from '../dispatch/job-dispatcher';
import type { Logger } from '../observability/log';
import type { JsonDocuments } from '../storage/json-documents';
import type { JobRecord } from './training';

/** A worker's claim on a job, or on one unit of it, kept in job.json. */
export type Lease = NonNullable<JobRecord['lease']>;

/** Thrown by a write or a check that finds another invocation holding the lease: this worker stops. */
export class LeaseLost extends Error {
  constructor(readonly owner: string | null) {
    super(`lease now held by ${owner}`);
  }
}

export function leaseLive(lease: Lease | null | undefined): lease is Lease {
  return !!lease && Date.parse(lease.expiresAt) > Date.now();
}

/** Where in job.json a lease is kept: the job's own (one worker runs the job whole) or a unit's. */
export interface LeaseSlot {
  owner(job: JobRecord): string | null;
  set(job: JobRecord, lease: Lease | null): JobRecord;
}

export const JOB_LEASE: LeaseSlot = {
  owner: (job) => job.lease?.owner ?? null,
  set: (job, lease) => ({ ...job, lease }),
};

/**
 * One invocation's lease on a job or a unit, and every write it makes to job.json: each is a compare-and-swap
 * that first proves the lease is still this invocation's, so a worker that lost it (it stalled, and another
 * took over) stops at its next write or check instead of overwriting the new owner's work.
 */
export class JobLease {
  /** The job as this invocation last wrote it. */
  job!: JobRecord;
  private heartbeat: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly docs: JsonDocuments,
    private readonly jobKey: string,
    /** The invocation id: Lambda keeps it across the retries of one event, so a retry takes its lease back. */
    readonly owner: string,
    private readonly leaseMs: number,
    private readonly slot: LeaseSlot,
    /** Compare-and-swap retries: many units write one job.json, and may lose a few races in a row. */
    private readonly retries?: number,
  ) {}

  /** The lease as this invocation holds it from now on. */
  fresh(): Lease {
    return { owner: this.owner, expiresAt: new Date(Date.now() + this.leaseMs).toISOString() };
  }

  /** The other invocation whose live lease keeps this one out, or null. */
  heldElsewhere(lease: Lease | null | undefined): string | null {
    return leaseLive(lease) && lease.owner !== this.owner ? lease.owner : null;
  }

  /**
   * Takes the lease (or not) in one swap: `decide` returns the job to write, with the lease or unchanged,
   * and what it decided; it runs again when the swap loses a race.
   */
  async acquire<V>(decide: (job: JobRecord) => { job: JobRecord; verdict: V }): Promise<V> {
    let verdict: V | undefined;
    const { value } = await this.docs.update<JobRecord>(
      this.jobKey,
      (job) => {
        const decided = decide(job);
        verdict = decided.verdict;
        return decided.job;
      },
      this.options(),
    );
    this.job = value;
    return verdict as V;
  }

  /** Compare-and-swap on job.json that also proves this invocation still holds the lease. */
  async write(mutate: (job: JobRecord) => JobRecord): Promise<JobRecord> {
    const { value } = await this.docs.update<JobRecord>(
      this.jobKey,
      (job) => {
        const owner = this.slot.owner(job);
        if (owner !== this.owner) throw new LeaseLost(owner);
        return mutate(job);
      },
      this.options(),
    );
    this.job = value;
    return value;
  }

  /** write, renewing the lease in the same swap. */
  writeRenewing(mutate: (job: JobRecord) => JobRecord): Promise<JobRecord> {
    return this.write((job) => this.slot.set(mutate(job), this.fresh()));
  }

  /** The job as stored now (null when it is gone); LeaseLost when another invocation holds the lease. */
  async read(): Promise<JobRecord | null> {
    const job = (await this.docs.get<JobRecord>(this.jobKey))?.value ?? null;
    if (job && this.slot.owner(job) !== this.owner) throw new LeaseLost(this.slot.owner(job));
    return job;
  }

  /**
   * Renews the lease every third of its length until stopped: on a timer, not only with progress, so that
   * loading a large snapshot or one long batch does not let it lapse while this worker is alive (a reader
   * would then start a second worker).
   */
  startHeartbeat(log: Logger): void {
    this.heartbeat = setInterval(
      () => {
        this.write((job) => this.slot.set(job, this.fresh())).catch((error) => {
          if (!(error instanceof LeaseLost)) log.warn('lease renewal failed', { error: String(error) });
        });
      },
      Math.max(250, this.leaseMs / 3),
    );
  }

  stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  /** Out of time: gives the lease up and sends the event that lets a fresh invocation take it and go on. */
  async handOn(dispatcher: JobDispatcher, event: TrainWorkerEvent): Promise<void> {
    await this.write((job) => ({ ...this.slot.set(job, null), updatedAt: new Date().toISOString() }));
    await dispatcher.dispatch(event);
  }

  private options(): { retries?: number } {
    return this.retries === undefined ? {} : { retries: this.retries };
  }
}
