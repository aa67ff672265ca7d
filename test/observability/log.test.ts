import { createLogger } from '../../src/observability/log';

/** The project's logger interface, written by Powertools' Logger: what lands on stdout and stderr. */

function capture() {
  const lines: Array<{ stream: 'stdout' | 'stderr'; record: Record<string, unknown> }> = [];
  const spies = (['stdout', 'stderr'] as const).map((stream) =>
    jest.spyOn(process[stream], 'write').mockImplementation((chunk: string | Uint8Array) => {
      for (const line of String(chunk).split('\n').filter(Boolean))
        lines.push({ stream, record: JSON.parse(line) });
      return true;
    }),
  );
  return { lines, restore: () => spies.forEach((s) => s.mockRestore()) };
}

describe('createLogger', () => {
  it('writes one JSON object per line with the service, the persistent keys, the child keys and the fields', () => {
    const out = capture();
    try {
      createLogger('info', { service: 'lymphoscope', stage: 'test' })
        .child({ jobId: 'job-1' })
        .info('epoch done', { epoch: 3, ms: 1520 });
    } finally {
      out.restore();
    }
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0].stream).toBe('stdout');
    expect(out.lines[0].record).toMatchObject({
      level: 'INFO',
      message: 'epoch done',
      service: 'lymphoscope',
      stage: 'test',
      jobId: 'job-1',
      epoch: 3,
      ms: 1520,
    });
    expect(Date.parse(String(out.lines[0].record.timestamp))).not.toBeNaN();
  });

  it('sends warnings and errors to stderr, with an error its name, message and stack', () => {
    const out = capture();
    try {
      const log = createLogger('info');
      log.warn('slow S3', { ms: 9000 });
      log.error('ML runtime failed to load', { error: new TypeError('wasm missing') });
    } finally {
      out.restore();
    }
    expect(out.lines.map((l) => [l.stream, l.record.level])).toEqual([
      ['stderr', 'WARN'],
      ['stderr', 'ERROR'],
    ]);
    expect(out.lines[1].record.error).toMatchObject({ name: 'TypeError', message: 'wasm missing' });
    expect(String((out.lines[1].record.error as { stack: string }).stack)).toContain('log.test.ts');
  });

  it('drops what is below its level, and everything when silent', () => {
    const out = capture();
    try {
      const warnOnly = createLogger('warn');
      warnOnly.debug('d');
      warnOnly.info('i');
      warnOnly.child({ k: 1 }).info('child i');
      warnOnly.warn('w');
      const silent = createLogger('silent');
      silent.error('e');
      silent.child({ k: 1 }).error('child e');
    } finally {
      out.restore();
    }
    expect(out.lines.map((l) => l.record.message)).toEqual(['w']);
  });
});
