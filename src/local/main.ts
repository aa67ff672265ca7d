/**
 * `npm start`: the whole product on this machine (local S3 + GraphQL API + training worker), with the
 * bundled demo model serving. Data lives under .data/ and is found again on the next start.
 */
import path from 'node:path';
import { buildConsole } from '../../console/build';
import { CONSOLE_DIST_DIR, startLocalStack } from './stack';

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 4000);
  const dataDir = path.resolve(process.env.LYMPHOSCOPE_DATA_DIR ?? '.data');
  // Rebuilt on every start (about a second, offline), so the console served always matches the source.
  await buildConsole(CONSOLE_DIST_DIR);
  const stack = await startLocalStack({
    dataDir,
    port,
    s3Port: Number(process.env.LYMPHOSCOPE_S3_PORT ?? 0),
    adminKey: process.env.LYMPHOSCOPE_ADMIN_KEY,
    logLevel: (process.env.LYMPHOSCOPE_LOG_LEVEL as 'info') ?? 'info',
  });
  const key = stack.adminKey;
  const lines = [
    '',
    `Lymphoscope is running.`,
    `  GraphQL API + Apollo Sandbox: ${stack.url.replace('127.0.0.1', 'localhost')}`,
    `  Review console: ${stack.consoleUrl.replace('127.0.0.1', 'localhost')} (sign in with the admin key below)`,
    `  Local S3: ${stack.s3Endpoint} (bucket ${stack.bucket}, data in ${dataDir})`,
    `  Production model: ${stack.productionModelVersion ?? 'none (run `npm run demo-model`)'}`,
    key
      ? `  Admin API key${stack.adminKeyCreated ? ' (created now; shown once, save it)' : ''}: ${key}`
      : '  Admin API key: created on the first start (set LYMPHOSCOPE_ADMIN_KEY to choose one).',
    '',
    'Try it:',
    `  curl -s ${stack.url.replace('127.0.0.1', 'localhost')} -H 'content-type: application/json' \\`,
    `    -d '{"query":"{ health { status mlBackend productionModelVersion } }"}'`,
    '  Classify a real cell (KEY = the admin key above):',
    `  printf '{"query":"mutation($i: PredictInput!) { predict(input: $i) { label probabilityAll needsReview } }","variables":{"i":{"imageBase64":"%s"}}}' \\`,
    `    "$(base64 -w0 data/cnmc-sample/all/UID_11_1_1_all.bmp)" | curl -s ${stack.url.replace('127.0.0.1', 'localhost')} \\`,
    `    -H 'content-type: application/json' -H "x-api-key: $KEY" --data @-`,
    '  More examples: docs/API.md. Ctrl-C stops everything; the data stays for the next start.',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');

  // The local S3 has no lifecycle rules: apply the deployed bucket's retention rules at start and hourly.
  const { retentionSweep, log } = stack.services;
  const sweep = () =>
    retentionSweep
      .run(new Date())
      .catch((error) => log.warn('retention sweep failed', { error: String(error) }));
  void sweep();
  const sweeper = setInterval(sweep, 3_600_000);
  sweeper.unref();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    clearInterval(sweeper);
    process.stdout.write(`\n${signal}: stopping...\n`);
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error) => {
  process.stderr.write(`Lymphoscope could not start: ${error?.stack ?? error}\n`);
  process.exit(1);
});
