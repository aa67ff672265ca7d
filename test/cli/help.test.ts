import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { version } from '../../package.json';
import { main } from '../../src/cli';
import { COMMANDS } from '../../src/cli/help';

const run = promisify(execFile);
const BIN = path.join(__dirname, '..', '..', 'bin', 'lymphoscope.js');

/** Runs the CLI in this process and returns its status and what it wrote. */
async function inProcess(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await main(argv), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** `npx lymphoscope` as a newcomer meets it: help for the tool and for every command, and the version. */
describe('lymphoscope --help and --version', () => {
  it('lists every command with --help, and prints the version (the real bin)', async () => {
    const { stdout } = await run(process.execPath, [BIN, '--help']);
    for (const name of Object.keys(COMMANDS)) expect(stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    expect((await run(process.execPath, [BIN, '--version'])).stdout).toBe(`lymphoscope ${version}\n`);
    expect(await inProcess('-V')).toEqual({ code: 0, stdout: `lymphoscope ${version}\n`, stderr: '' });
  });

  it.each(Object.keys(COMMANDS))('explains `%s --help` without running it', async (name) => {
    // No --data: had the command run, it would have thrown.
    const help = await inProcess(name, '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`^Usage: lymphoscope ${name} `));
    expect(help.stdout).toContain('Example:');
    expect(await inProcess('help', name)).toEqual(help);
    expect(await inProcess(name, '-h')).toEqual(help);
  });

  it('answers an unknown flag with the command to run for help, status 2', async () => {
    expect(await inProcess('evaluate', '--modle', 'x')).toEqual({
      code: 2,
      stdout: '',
      stderr: "Unknown option '--modle'.\nRun `lymphoscope evaluate --help` for its flags.\n",
    });
    expect((await inProcess('help', 'nonsense')).code).toBe(2);
    expect((await inProcess()).code).toBe(2);
  });
});
