/**
 * Progress for long work: a redrawn bar on a terminal, plain lines (at most one per `every` ms)
 * otherwise, so logs in CI stay readable.
 */
export class Progress {
  private lastLine = 0;
  private readonly tty: boolean;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly every = 5000,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(fraction: number, label: string): void {
    if (this.tty) {
      const width = 30;
      const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
      this.stream.write(
        `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${label}\x1b[K`,
      );
    } else if (Date.now() - this.lastLine >= this.every) {
      this.lastLine = Date.now();
      this.stream.write(`${(fraction * 100).toFixed(0)}% ${label}\n`);
    }
  }

  /** A line that stays (an epoch's summary). */
  line(text: string): void {
    this.stream.write(this.tty ? `\r${text}\x1b[K\n` : `${text}\n`);
  }

  done(): void {
    if (this.tty) this.stream.write('\r\x1b[K');
  }
}

export const formatSeconds = (s: number | null) =>
  s === null || !Number.isFinite(s)
    ? '?'
    : s < 90
      ? `${Math.round(s)}s`
      : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
