import { PassThrough } from 'node:stream';
import { Progress } from '../../src/cli/progress';

/** A stream that collects what is written; `tty` makes it look like a terminal to cli-progress. */
function capture(tty: boolean) {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  if (tty) {
    stream.isTTY = true;
    stream.columns = 120;
  }
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Progress', () => {
  it('draws a bar with percentage and ETA on a terminal, keeps summary lines, and clears the bar when done', async () => {
    const out = capture(true);
    const progress = new Progress(out.stream);
    for (let i = 1; i <= 5; i++) {
      progress.update(i / 10, `epoch ${i}/10`);
      await sleep(30);
    }
    await sleep(250); // cli-progress redraws 5 times a second
    progress.line('epoch 5: loss 0.4000');
    progress.done();
    const text = out.text();
    expect(text).toMatch(/\[=+-+\] 50% ETA \d+s epoch 5\/10/);
    expect(text).toContain('epoch 5: loss 0.4000\n');
    // The bar was erased at the end (cursor moved back and the rest of the screen cleared).
    expect(text.endsWith('\x1b[0J') || text.endsWith('\x1b[?25h')).toBe(true);
  });

  it('writes plain lines with an ETA, at most one per interval, when piped', async () => {
    const out = capture(false);
    const progress = new Progress(out.stream, 50);
    progress.update(0, 'decoding 0/4');
    await sleep(60);
    progress.update(0.5, 'decoding 2/4');
    progress.update(0.6, 'skipped: within the interval');
    progress.line('decoded');
    progress.done();
    const lines = out.text().trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('0% ETA ? decoding 0/4');
    // Half done after about 60 ms: about 60 ms to go.
    expect(lines[1]).toMatch(/^50% ETA 0s decoding 2\/4$/);
    expect(lines[2]).toBe('decoded');
    expect(out.text()).not.toContain('\x1b');
  });
});
