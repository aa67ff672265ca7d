import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { graphqlClient } from '../helpers/graphql';

/** `npm start` (src/local/main.ts) as a person runs it, with LYMPHOSCOPE_STAGE set. */

const run = promisify(execFile);
const MAIN = path.join(__dirname, '..', '..', 'src', 'local', 'main.ts');
// As `npm start` runs it: the tsx command line (ESM and CommonJS, dynamic imports included).
const TSX = require.resolve('tsx/cli');
const start = (env: NodeJS.ProcessEnv) =>
  spawn(process.execPath, [TSX, MAIN], {
    env: { ...process.env, PORT: '0', LYMPHOSCOPE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

describe('npm start with LYMPHOSCOPE_STAGE', () => {
  it('refuses a stage that only exists on AWS, saying which ones it runs', async () => {
    const refused = await run(process.execPath, [TSX, MAIN], {
      env: { ...process.env, LYMPHOSCOPE_STAGE: 'dev' },
    }).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused?.code).toBe(2);
    expect(refused?.stderr).toContain(
      'LYMPHOSCOPE_STAGE=dev: npm start runs stage local (the default) or prod',
    );
    expect(refused?.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  describe('prod', () => {
    let child: ChildProcess;
    let dataDir: string;
    let url: string;
    let stdout = '';

    beforeAll(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-main-prod-'));
      child = start({ LYMPHOSCOPE_STAGE: 'prod', LYMPHOSCOPE_DATA_DIR: dataDir });
      url = await new Promise<string>((resolve, reject) => {
        child.stdout!.on('data', (chunk) => {
          stdout += chunk;
          const match = /GraphQL API: (http:\/\/localhost:\d+\/graphql)/.exec(stdout);
          if (match) resolve(match[1]);
        });
        child.on('exit', (code) => reject(new Error(`npm start exited ${code}: ${stdout}`)));
      });
    }, 180_000);

    afterAll(async () => {
      if (child && child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dataDir, { recursive: true, force: true });
    });

    it('says so, and runs the API as stage prod', async () => {
      expect(stdout).toContain('running as stage prod');
      const { data } = await graphqlClient(url)('{ health { stage } }');
      expect(data?.health.stage).toBe('prod');
    });

    it('refuses introspection and gives no field suggestions', async () => {
      const gql = graphqlClient(url);
      const introspection = await gql('{ __schema { queryType { name } } }');
      expect(introspection.errors?.[0].message).toMatch(/introspection/i);
      const typo = await gql('{ healht { stage } }');
      expect(typo.errors?.[0].message).not.toMatch(/Did you mean/);
    });

    it('serves the production landing page, not the embedded Sandbox', async () => {
      const page = await (await fetch(url, { headers: { accept: 'text/html' } })).text();
      expect(page).toContain('<title>Apollo Server</title>');
      // Stage local embeds Apollo Sandbox here (div#embeddableSandbox), which runs introspection.
      expect(page).not.toContain('embeddableSandbox');
    });
  });
});
