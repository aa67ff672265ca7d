import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { graphqlClient, ok } from '../helpers/graphql';

/**
 * `npm start` (src/local/main.ts) on one data directory, started again and again as a user would: the
 * local S3 keeps its port, the banner says where everything is and how to get the key, the AWS SDK's
 * Node-version warning is not printed, health names what really serves, and a port in use ends the
 * start with one line.
 */

const ROOT = path.join(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

interface Run {
  child: ChildProcess;
  output: string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

function startMain(dataDir: string, extraEnv: Record<string, string> = {}): Run {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) =>
        !name.startsWith('LYMPHOSCOPE_') && name !== 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
    ),
  );
  const child = spawn(TSX, [path.join(ROOT, 'src', 'local', 'main.ts')], {
    cwd: ROOT,
    env: { ...env, PORT: '0', LYMPHOSCOPE_DATA_DIR: dataDir, LYMPHOSCOPE_LOG_LEVEL: 'warn', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: Run = {
    child,
    output: '',
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  };
  const collect = (chunk: Buffer) => (run.output += chunk.toString('utf8'));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return run;
}

/** Waits for the banner (the line before the examples) and returns it with the URLs it names. */
async function banner(run: Run): Promise<{ api: string; s3Port: number; explorer: string }> {
  const deadline = Date.now() + 90_000;
  while (!run.output.includes('Try it:')) {
    if (run.child.exitCode !== null) throw new Error(`main.ts exited:\n${run.output}`);
    if (Date.now() > deadline) throw new Error(`main.ts did not start in time:\n${run.output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const api = /GraphQL API \+ Apollo Sandbox: (http:\/\/localhost:\d+\/graphql)/.exec(run.output)![1];
  const s3Port = Number(/Local S3: http:\/\/127\.0\.0\.1:(\d+)/.exec(run.output)![1]);
  const explorer = /GraphQL explorer \(offline\): (\S+)/.exec(run.output)![1];
  return { api: api.replace('localhost', '127.0.0.1'), s3Port, explorer };
}

async function stop(run: Run): Promise<void> {
  if (run.child.exitCode === null) run.child.kill('SIGTERM');
  await run.exited;
}

let dataDir: string;
const runs: Run[] = [];
let blocker: Server | null = null;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-start-'));
});

afterAll(async () => {
  for (const run of runs) await stop(run);
  blocker?.close();
  await rm(dataDir, { recursive: true, force: true });
});

it('keeps the local S3 port across restarts, prints an honest banner, and says what serves', async () => {
  const first = startMain(dataDir, { LYMPHOSCOPE_ADMIN_KEY: 'lsk_start_test_admin_key_0123456789' });
  runs.push(first);
  const one = await banner(first);
  expect(first.output).toContain('(KEY = the admin key above)');
  expect(first.output).not.toContain('NodeVersionSupportWarning');
  expect(one.explorer).toMatch(/^http:\/\/localhost:\d+\/console\/explorer\/$/);
  const { health } = ok(await graphqlClient(one.api)('{ health { mlBackend tfjsBackend } }'));
  expect(health).toEqual({ mlBackend: 'onnxruntime', tfjsBackend: 'wasm' });
  expect(JSON.parse(await readFile(path.join(dataDir, 'local-s3.json'), 'utf8'))).toEqual({
    port: one.s3Port,
  });

  // A second start while the first runs, on the first's API port: one line, status 1, no stack trace.
  const apiPort = Number(new URL(one.api).port);
  const clash = startMain(dataDir, { PORT: String(apiPort) });
  runs.push(clash);
  expect(await clash.exited).toBe(1);
  expect(clash.output).toBe(
    `Lymphoscope could not start: The API port ${apiPort} is in use (is another Lymphoscope running?). Stop it or set PORT to another port.\n`,
  );
  await stop(first);

  // Restarted with no key printed: the same S3 port, and the banner says where the key comes from.
  const second = startMain(dataDir);
  runs.push(second);
  const two = await banner(second);
  expect(two.s3Port).toBe(one.s3Port);
  expect(second.output).not.toContain('the admin key above');
  expect(second.output).toContain(
    'KEY = your admin key: the one the first start printed, or LYMPHOSCOPE_ADMIN_KEY',
  );
  await stop(second);

  // The remembered port taken by something else: the stack starts on another and remembers that one.
  blocker = createServer();
  await new Promise<void>((resolve) => blocker!.listen(one.s3Port, '127.0.0.1', resolve));
  const third = startMain(dataDir);
  runs.push(third);
  const three = await banner(third);
  expect(three.s3Port).not.toBe(one.s3Port);
  expect(JSON.parse(await readFile(path.join(dataDir, 'local-s3.json'), 'utf8'))).toEqual({
    port: three.s3Port,
  });
  await stop(third);
}, 300_000);
