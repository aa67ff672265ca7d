import { MultiBar } from 'cli-progress';

/**
 * Progress for long work (decode, train, cv, evaluate). On a terminal: a bar redrawn in place by
 * cli-progress, with the percentage, an ETA from the recent rate, and the caller's label; lines that
 * must stay (an epoch's summary) are printed above it. Piped or in CI: plain lines, at most one per
 * `every` ms, each with its own ETA, so logs stay readable.
 */
export class Progress {
  private lastLine = 0;
  private readonly tty: boolean;
  /** One bar at a time; a MultiBar because only it can print lines above a live bar (log()). */
  private bars: MultiBar | null = null;
  private bar: ReturnType<MultiBar['create']> | null = null;
  /** When the current run of updates began (the first update after construction or done()). */
  private startedAt: number | null = null;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly every = 5000,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(fraction: number, label: string): void {
    const f = Number.isFinite(fraction) ? Math.max(0, Math.min(1, fraction)) : 0;
    const now = Date.now();
    this.startedAt ??= now;
    if (this.tty) {
      const value = Math.round(f * 1000);
      if (!this.bar) {
        this.bars = new MultiBar({
          stream: this.stream,
          format: '[{bar}] {percentage}% ETA {eta_formatted} {label}',
          barsize: 30,
          hideCursor: true,
          clearOnComplete: true,
          // The ETA follows the last 100 updates: training speeds up after the first batches.
          etaBuffer: 100,
          fps: 5,
        });
        this.bar = this.bars.create(1000, value, { label });
        this.bars.update(); // draw now; later updates are redrawn at most `fps` times a second
      } else {
        this.bar.update(value, { label });
      }
      return;
    }
    if (now - this.lastLine < this.every) return;
    this.lastLine = now;
    const elapsed = (now - this.startedAt) / 1000;
    const eta = f > 0 && elapsed > 0 ? (elapsed * (1 - f)) / f : null;
    this.stream.write(`${(f * 100).toFixed(0)}% ETA ${formatSeconds(eta)} ${label}\n`);
  }

  /** A line that stays (an epoch's summary). */
  line(text: string): void {
    if (this.bars) {
      // Printed above the bar at once (a redraw flushes the log), not at the next scheduled redraw,
      // which done() would cancel.
      this.bars.log(`${text}\n`);
      this.bars.update();
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  /** The work is over: the bar is removed; the next update starts a new one with a fresh ETA. */
  done(): void {
    this.bars?.stop();
    this.bars = null;
    this.bar = null;
    this.startedAt = null;
  }
}

export const formatSeconds = (s: number | null) =>
  s === null || !Number.isFinite(s)
    ? '?'
    : s < 90
      ? `${Math.round(s)}s`
      : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
