/**
 * `npm start`: the whole product on this machine (local S3 + GraphQL API + training worker), with the
 * bundled demo model serving. Data lives under .data/ and is found again on the next start.
 */
import path from 'node:path';
import { buildConsole } from '../../console/build';
import { portInUse, portIsFree } from './ports';
import { CONSOLE_DIST_DIR, startLocalStack } from './stack';

class StageRefused extends Error {}

/**
 * The stage `npm start` plays: local (the default: introspection, Apollo Sandbox, field suggestions),
 * or prod's API behaviour on this machine (introspection off, the production landing page, no "Did you
 * mean" suggestions), to see what a deployed prod answers. Any other stage exists only on AWS.
 */
function localStage(value: string | undefined): 'local' | 'prod' {
  const stage = value?.trim() || 'local';
  if (stage === 'local' || stage === 'prod') return stage;
  throw new StageRefused(
    `LYMPHOSCOPE_STAGE=${stage}: npm start runs stage local (the default) or prod (a production-like ` +
      'API on this machine). Other stages are deployed to AWS: see docs/DEPLOYMENT.md.',
  );
}

async function main(): Promise<void> {
  const stage = localStage(process.env.LYMPHOSCOPE_STAGE);
  // The AWS SDK warns at every start that its 2027 releases will need Node 22; the local stack runs on
  // Node 20 too (package.json's engines), so the warning would only hide the banner. AWS documents this
  // switch (aws-sdk-js-v3#7983); set it to anything but 'true' to see the warning again.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const port = Number(process.env.PORT ?? 4000);
  const dataDir = path.resolve(process.env.LYMPHOSCOPE_DATA_DIR ?? '.data');
  if (port && !(await portIsFree(port, '127.0.0.1')))
    throw portInUse(port, 'The API', 'PORT to another port');
  // Rebuilt on every start (a few seconds with the explorer, offline), so what is served matches the source.
  await buildConsole(CONSOLE_DIST_DIR);
  const stack = await startLocalStack({
    dataDir,
    port,
    s3Port: Number(process.env.LYMPHOSCOPE_S3_PORT ?? 0),
    adminKey: process.env.LYMPHOSCOPE_ADMIN_KEY,
    logLevel: (process.env.LYMPHOSCOPE_LOG_LEVEL as 'info') ?? 'info',
    env: { LYMPHOSCOPE_STAGE: stage },
  });
  const key = stack.adminKey;
  const lines = [
    '',
    stage === 'prod'
      ? 'Lymphoscope is running as stage prod (introspection off, production landing page, no suggestions).'
      : `Lymphoscope is running.`,
    `  Start page: ${new URL('/', stack.url).toString().replace('127.0.0.1', 'localhost')}`,
    `  GraphQL explorer (offline): ${stack.explorerUrl.replace('127.0.0.1', 'localhost')}`,
    `  GraphQL API${stage === 'prod' ? '' : ' + Apollo Sandbox'}: ${stack.url.replace('127.0.0.1', 'localhost')}${stage === 'prod' ? '' : ' (Sandbox needs the internet)'}`,
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
    key
      ? '  Classify a real cell (KEY = the admin key above):'
      : '  Classify a real cell (KEY = your admin key: the one the first start printed, or LYMPHOSCOPE_ADMIN_KEY):',
    `  printf '{"query":"mutation($i: PredictInput!) { predict(input: $i) { label probabilityAll needsReview reviewReasons } }","variables":{"i":{"imageBase64":"%s"}}}' \\`,
    `    "$(base64 -w0 data/cnmc-sample/all/UID_11_1_1_all.bmp)" | curl -s ${stack.url.replace('127.0.0.1', 'localhost')} \\`,
    `    -H 'content-type: application/json' -H "x-api-key: $KEY" --data @-`,
    '  With the demo model this blast (a training cell) answers NORMAL, p 0.28, in the review band:',
    '  needsReview true, reviewReasons [UNCERTAIN]: a human confirms it.',
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

main().catch((error: unknown) => {
  if (error instanceof StageRefused) {
    process.stderr.write(`Lymphoscope did not start: ${error.message}\n`);
    process.exit(2);
  }
  // One line a person can act on; the stack only when asked for (LYMPHOSCOPE_LOG_LEVEL=debug).
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  const debug = process.env.LYMPHOSCOPE_LOG_LEVEL === 'debug' && error instanceof Error;
  process.stderr.write(`Lymphoscope could not start: ${message}\n${debug ? `${error.stack}\n` : ''}`);
  process.exit(1);
});
