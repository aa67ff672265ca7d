import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { graphqlClient, ok } from '../helpers/graphql';

/**
 * `npm start` (src/local/main.ts) as a user runs it: on a fresh data directory it creates an admin key
 * and prints it once; LYMPHOSCOPE_ADMIN_KEY chooses one for scripts; a restart prints no secret.
 */

const ROOT = path.join(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

interface Started {
  child: ChildProcess;
  output: string;
  url: string;
}

/** Starts main.ts and resolves once it has printed its banner (the line with the example curl). */
function startMain(dataDir: string, extraEnv: Record<string, string> = {}): Promise<Started> {
  // The product's own variables come only from this test, never from whatever the runner had set.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('LYMPHOSCOPE_')),
  );
  const child = spawn(TSX, [path.join(ROOT, 'src', 'local', 'main.ts')], {
    cwd: ROOT,
    env: { ...env, PORT: '0', LYMPHOSCOPE_DATA_DIR: dataDir, LYMPHOSCOPE_LOG_LEVEL: 'warn', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`main.ts did not start in time:\n${output}`)), 45_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const url = /GraphQL API \+ Apollo Sandbox: (http:\/\/localhost:\d+\/graphql)/.exec(output)?.[1];
      if (url && output.includes('Try it:')) {
        clearTimeout(timer);
        resolve({ child, output, url: url.replace('localhost', '127.0.0.1') });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`main.ts exited with ${code}:\n${output}`));
    });
  });
}

async function stopMain(started: Started): Promise<void> {
  if (started.child.exitCode !== null) return;
  const exited = new Promise((resolve) => started.child.once('exit', resolve));
  started.child.kill('SIGTERM');
  await exited;
}

let dataDir: string;
const running: Started[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-bootstrap-'));
});

afterAll(async () => {
  for (const started of running) await stopMain(started);
  await rm(dataDir, { recursive: true, force: true });
});

it('creates and prints an admin key on the first start, takes LYMPHOSCOPE_ADMIN_KEY when set, and prints no secret on a plain restart', async () => {
  const first = await startMain(dataDir);
  running.push(first);
  const created = /Admin API key \(created now; shown once, save it\): (lsk_[A-Za-z0-9_-]+)/.exec(
    first.output,
  )?.[1];
  expect(created).toBeDefined();
  expect(ok(await graphqlClient(first.url, created)('{ me { role } }')).me.role).toBe('ADMIN');
  expect((await graphqlClient(first.url)('{ me { role } }')).errors?.[0].extensions?.code).toBe(
    'UNAUTHENTICATED',
  );
  await stopMain(first);

  const chosen = 'lsk_chosen_by_a_script_0123456789abcdef';
  const second = await startMain(dataDir, { LYMPHOSCOPE_ADMIN_KEY: chosen });
  running.push(second);
  expect(second.output).toContain(`Admin API key: ${chosen}`);
  expect(second.output).not.toContain(created!);
  expect(ok(await graphqlClient(second.url, chosen)('{ me { role } }')).me.role).toBe('ADMIN');
  // The key made on the first start is still valid: the data directory is kept.
  expect(ok(await graphqlClient(second.url, created)('{ apiKeys { role revokedAt } }')).apiKeys).toEqual([
    { role: 'ADMIN', revokedAt: null },
    { role: 'ADMIN', revokedAt: null },
  ]);
  await stopMain(second);

  const third = await startMain(dataDir);
  running.push(third);
  expect(third.output).toContain('Admin API key: created on the first start');
  expect(third.output).not.toMatch(/lsk_/);
  await stopMain(third);
}, 120_000);
