/**
 * `lymphoscope bootstrap`: what a freshly deployed stack lacks before anyone can call it, done with the
 * caller's own AWS credentials (the only credentials a new stack trusts): the first admin API key, a
 * production model, and a smoke test of the API. Every step first looks whether its work is already
 * done, so a second run changes nothing it does not have to.
 *
 * It talks to S3 through the same services the Lambda functions use, with the SDK's ordinary
 * configuration (credentials chain, AWS_REGION, and AWS_ENDPOINT_URL_S3 when set): the test points that
 * variable at the local S3 server and runs exactly the code path AWS gets.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { loadConfig } from '../config';
import type { ModelBundle } from '../ml/models/model-bundle';
import type { Caller } from '../services/auth';
import { createServices, type Services } from '../services';
import type { ModelCard, NewModelCard } from '../services/models';
import { modelArtifacts } from '../services/model-artifacts';

export const DEFAULT_BOOTSTRAP_MODEL_DIR = path.join(__dirname, '..', '..', 'data', 'demo-model');
export const DEFAULT_SMOKE_IMAGE = path.join(
  __dirname,
  '..',
  '..',
  'data',
  'cnmc-sample',
  'all',
  'UID_11_1_1_all.bmp',
);
/** The name of the admin key bootstrap makes: its presence is what "already bootstrapped" means. */
export const BOOTSTRAP_KEY_NAME = 'bootstrap admin';
/**
 * The actor in the audit log for what bootstrap does: no API key exists yet to act with. Which AWS
 * principal ran it is in CloudTrail (S3 data events), if the account records them.
 */
const BOOTSTRAP_ACTOR: Caller = Object.freeze({
  keyId: 'bootstrap-cli',
  role: 'ADMIN',
  partnerId: 'bootstrap-cli',
});
/** How many of the newest versions are compared with the model directory before registering it again. */
const RECENT_VERSIONS_CHECKED = 20;

export interface BootstrapOptions {
  stage: string;
  region: string;
  /** Both found from the CloudFormation stack's outputs when absent. */
  bucket?: string;
  apiUrl?: string;
  /** Default `lymphoscope-<stage>` (the Serverless Framework's naming). */
  stackName?: string;
  /** A model directory (model.json, weights.bin, card.json) to publish; default the bundled demo model. */
  modelDir?: string;
  /** Make another admin key even though bootstrap made one before (the old one was lost). */
  newAdminKey?: boolean;
  /** A key for the smoke test's prediction when this run makes none. */
  apiKey?: string;
  smokeImage?: string;
  /** Skip the smoke test (storage-only runs). */
  smoke?: boolean;
  /** Progress lines for a person; default stdout. */
  say?: (line: string) => void;
}

export interface SmokeOutcome {
  ok: boolean;
  health: { status: string; stage: string; mlBackend: string; productionModelVersion: string | null } | null;
  prediction: { label: string; probabilityAll: number; modelVersion: string } | null;
  /** Why the smoke test failed, or which part was skipped. */
  notes: string[];
}

export interface BootstrapOutcome {
  bucket: string;
  apiUrl: string | null;
  adminKey: { id: string; created: boolean; secret: string | null };
  model: { version: string; registered: boolean; promoted: boolean };
  smoke: SmokeOutcome | null;
}

/** The bucket and API URL the stack's outputs name (ArtifactsBucketName, and the framework's HttpApiUrl). */
export async function stackOutputs(
  stackName: string,
  region: string,
): Promise<{ bucket: string | null; apiUrl: string | null }> {
  const cloudFormation = new CloudFormationClient({ region });
  try {
    const { Stacks } = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    const outputs = new Map((Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
    return { bucket: outputs.get('ArtifactsBucketName') ?? null, apiUrl: outputs.get('HttpApiUrl') ?? null };
  } finally {
    cloudFormation.destroy();
  }
}

async function readModelDir(dir: string): Promise<{ bundle: ModelBundle; card: NewModelCard }> {
  const [modelJson, weights, cardJson] = await Promise.all([
    readFile(path.join(dir, 'model.json'), 'utf8'),
    readFile(path.join(dir, 'weights.bin')),
    readFile(path.join(dir, 'card.json'), 'utf8'),
  ]);
  const {
    version: _version,
    createdAt: _createdAt,
    charts: _charts,
    ...card
  } = JSON.parse(cardJson) as ModelCard;
  return { bundle: { modelJson: JSON.parse(modelJson), weights }, card };
}

/** The version holding exactly these weights: production first, then the newest versions. */
async function versionWithWeights(services: Services, weights: Buffer): Promise<string | null> {
  const production = await services.models.productionVersion();
  const candidates = [
    ...(production ? [production] : []),
    ...(await services.models.list(RECENT_VERSIONS_CHECKED)).items
      .map((e) => e.node.version)
      .filter((v) => v !== production),
  ];
  for (const version of candidates) {
    const bundle = await services.models.readBundle(version).catch(() => null);
    if (bundle && Buffer.compare(bundle.weights, weights) === 0) return version;
  }
  return null;
}

async function ensureAdminKey(
  services: Services,
  newAdminKey: boolean,
  say: (line: string) => void,
): Promise<BootstrapOutcome['adminKey']> {
  const existing = (await services.auth.list()).filter(
    (k) => k.role === 'ADMIN' && !k.revokedAt && k.name === BOOTSTRAP_KEY_NAME,
  );
  if (existing.length > 0 && !newAdminKey) {
    say(
      `Admin key: ${existing[0].id} exists (made by an earlier bootstrap); kept. Lost it? Rerun with --new-admin-key.`,
    );
    return { id: existing[0].id, created: false, secret: null };
  }
  const { record, secret } = await services.auth.create(BOOTSTRAP_ACTOR, BOOTSTRAP_KEY_NAME, 'ADMIN');
  say(`Admin key ${record.id} created. It is shown once and stored only as a hash: save it now.`);
  say(`  LYMPHOSCOPE_API_KEY=${secret}`);
  for (const old of existing) {
    say(
      `  The earlier bootstrap key ${old.id} still works: revoke it with this key, ` +
        `mutation { revokeApiKey(id: "${old.id}") { id revokedAt } }`,
    );
  }
  return { id: record.id, created: true, secret };
}

async function ensureProductionModel(
  services: Services,
  modelDir: string,
  say: (line: string) => void,
): Promise<BootstrapOutcome['model']> {
  const { bundle, card } = await readModelDir(modelDir);
  const production = await services.models.productionVersion();
  let version = await versionWithWeights(services, bundle.weights);
  const registered = version === null;
  if (version === null) {
    version = (await services.models.register(bundle, card)).version;
    say(`Model: ${modelDir} registered as ${version}.`);
  } else {
    say(`Model: ${modelDir} is already registered as ${version}.`);
  }
  if (production === version) {
    say(`Model: ${version} is already the production model.`);
    return { version, registered, promoted: false };
  }
  await services.models.promote(BOOTSTRAP_ACTOR, version, production);
  say(`Model: ${version} promoted to production (was ${production ?? 'unset'}).`);
  return { version, registered, promoted: true };
}

async function graphql(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  apiKey: string | null,
): Promise<{ data?: Record<string, unknown>; errors?: Array<{ message: string }> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey ? { 'x-api-key': apiKey } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return { errors: [{ message: `HTTP ${response.status}: ${text.slice(0, 200)}` }] };
  }
}

/** Health, then one prediction of a sample cell with the production model. Never throws. */
export async function smokeTest(apiUrl: string, apiKey: string | null, image: string): Promise<SmokeOutcome> {
  const url = new URL(apiUrl);
  if (!url.pathname.endsWith('/graphql')) url.pathname = `${url.pathname.replace(/\/$/, '')}/graphql`;
  const outcome: SmokeOutcome = { ok: false, health: null, prediction: null, notes: [] };
  try {
    const health = await graphql(
      url.toString(),
      '{ health { status stage mlBackend productionModelVersion } }',
      {},
      null,
    );
    outcome.health = (health.data?.health as SmokeOutcome['health']) ?? null;
    if (!outcome.health || outcome.health.status !== 'ok') {
      outcome.notes.push(`health: ${JSON.stringify(health.errors ?? outcome.health)}`);
      return outcome;
    }
    if (!apiKey) {
      outcome.notes.push('prediction skipped: no API key (pass --api-key or set LYMPHOSCOPE_API_KEY)');
      return outcome;
    }
    const imageBase64 = (await readFile(image)).toString('base64');
    const predicted = await graphql(
      url.toString(),
      'mutation Smoke($i: PredictInput!) { predict(input: $i) { label probabilityAll modelVersion } }',
      { i: { imageBase64, explain: false } },
      apiKey,
    );
    outcome.prediction = (predicted.data?.predict as SmokeOutcome['prediction']) ?? null;
    if (!outcome.prediction) {
      outcome.notes.push(`prediction: ${predicted.errors?.map((e) => e.message).join('; ') ?? 'no answer'}`);
      return outcome;
    }
    outcome.ok = true;
  } catch (error) {
    outcome.notes.push(`request failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return outcome;
}

export async function bootstrap(options: BootstrapOptions): Promise<BootstrapOutcome> {
  const say = options.say ?? ((line: string) => process.stdout.write(line + '\n'));
  let { bucket, apiUrl } = options;
  if (!bucket || (!apiUrl && options.smoke !== false)) {
    const stackName = options.stackName ?? `lymphoscope-${options.stage}`;
    const outputs = await stackOutputs(stackName, options.region);
    bucket ??= outputs.bucket ?? undefined;
    apiUrl ??= outputs.apiUrl ?? undefined;
    if (!bucket)
      throw new Error(`The stack ${stackName} in ${options.region} has no ArtifactsBucketName output.`);
    say(`Stack ${stackName} (${options.region}): bucket ${bucket}, API ${apiUrl ?? 'unknown'}.`);
  }
  // The deployed functions' configuration, minus anything local: the SDK's own settings decide where
  // S3 is (AWS, or AWS_ENDPOINT_URL_S3) and which credentials sign.
  const config = loadConfig({
    LYMPHOSCOPE_STAGE: options.stage,
    LYMPHOSCOPE_BUCKET: bucket,
    AWS_REGION: options.region,
    LYMPHOSCOPE_LOG_LEVEL: 'warn',
  });
  const services = createServices(config, { registration: modelArtifacts });
  if (!(await services.store.ping())) {
    throw new Error(`The bucket ${bucket} cannot be reached with these AWS credentials.`);
  }
  const adminKey = await ensureAdminKey(services, options.newAdminKey === true, say);
  const model = await ensureProductionModel(services, options.modelDir ?? DEFAULT_BOOTSTRAP_MODEL_DIR, say);
  let smoke: SmokeOutcome | null = null;
  if (options.smoke !== false) {
    if (!apiUrl) throw new Error('No API URL: pass --api-url, or deploy the stack first.');
    smoke = await smokeTest(
      apiUrl,
      adminKey.secret ?? options.apiKey ?? null,
      options.smokeImage ?? DEFAULT_SMOKE_IMAGE,
    );
    const h = smoke.health;
    say(
      h
        ? `Smoke: health ${h.status} (stage ${h.stage}, ${h.mlBackend}, model ${h.productionModelVersion ?? 'none'})`
        : 'Smoke: health did not answer',
    );
    if (smoke.prediction) {
      say(
        `Smoke: sample cell predicted ${smoke.prediction.label} ` +
          `(p(ALL) ${smoke.prediction.probabilityAll.toFixed(3)}, model ${smoke.prediction.modelVersion})`,
      );
    }
    for (const note of smoke.notes) say(`Smoke: ${note}`);
    say(smoke.ok ? 'Smoke test passed.' : 'Smoke test FAILED.');
  }
  return { bucket, apiUrl: apiUrl ?? null, adminKey, model, smoke };
}

/** `lymphoscope bootstrap`: exit status 0 when everything is in place and the smoke test passed. */
export async function bootstrapCommand(flags: Record<string, string | boolean | undefined>): Promise<number> {
  const text = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
  const stage = text('stage') ?? 'dev';
  const outcome = await bootstrap({
    stage,
    region: text('region') ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    bucket: text('bucket'),
    apiUrl: text('api-url'),
    stackName: text('stack'),
    modelDir: text('model'),
    newAdminKey: flags['new-admin-key'] === true,
    apiKey: text('api-key') ?? process.env.LYMPHOSCOPE_API_KEY,
    smoke: flags['no-smoke'] !== true,
  });
  if (flags.json) process.stdout.write(JSON.stringify(outcome) + '\n');
  return outcome.smoke === null || outcome.smoke.ok ? 0 : 1;
}
