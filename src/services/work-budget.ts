import { AsyncLocalStorage } from 'node:async_hooks';
import { tooLarge } from '../errors';

/**
 * How many pixels one request may have decoded, all images together: a `predictBatch` of 32 images at
 * the largest size, or 30 aliased `predict`s in one operation, would otherwise hold a process for
 * minutes while every other caller waits. The budget lives for one request (the GraphQL handler opens
 * it with `withPixelBudget`); code outside a request (the CLI, the training worker) has none and is
 * not limited.
 */
export class PixelBudget {
  private spent = 0;

  constructor(readonly limit: number) {}

  /** Throws PAYLOAD_TOO_LARGE unless `pixels` more fit; charges nothing. */
  ensure(pixels: number): void {
    if (this.spent + pixels > this.limit) {
      throw tooLarge(
        `This request would decode ${this.spent + pixels} pixels; the limit per request is ${this.limit}. Send fewer or smaller images per request.`,
        { limit: this.limit, limitName: 'LYMPHOSCOPE_MAX_PIXELS_PER_REQUEST', pixels: this.spent + pixels },
      );
    }
  }

  /** Charges `pixels`, or throws PAYLOAD_TOO_LARGE (charging nothing) when they do not fit. */
  spend(pixels: number): void {
    this.ensure(pixels);
    this.spent += pixels;
  }
}

const current = new AsyncLocalStorage<PixelBudget>();

/** Runs `work` (one request) with its own pixel budget. */
export function withPixelBudget<T>(limit: number, work: () => T): T {
  return current.run(new PixelBudget(limit), work);
}

/** The budget of the request being served, if any. */
export function currentPixelBudget(): PixelBudget | undefined {
  return current.getStore();
}

/** Runs `work` without the request's pixel budget (a bulk operation bounded otherwise). */
export function outsidePixelBudget<T>(work: () => T): T {
  return current.exit(work);
}
