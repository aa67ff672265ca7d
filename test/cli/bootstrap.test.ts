import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { BOOTSTRAP_KEY_NAME } from '../../src/cli/bootstrap';
import { startE2eStack, type E2eStack } from '../helpers/e2e-stack';
import { graphqlClient } from '../helpers/graphql';

/**
 * `lymphoscope bootstrap` as an operator runs it after `serverless deploy`: the real CLI in a child
 * process whose only way to S3 is the SDK's own configuration (AWS_ENDPOINT_URL_S3 and the credentials
 * chain), which is the code path it takes against AWS; the stack outputs are given with --bucket and
 * --api-url, and the smoke test calls the local API serving that bucket.
 */

const run = promisify(execFile);
const BIN = path.join(__dirname, '..', '..', 'bin', 'lymphoscope.js');

interface Outcome {
  adminKey: { id: string; created: boolean; secret: string | null };
  model: { version: string; registered: boolean; promoted: boolean };
  smoke: { ok: boolean; prediction: { label: string; modelVersion: string } | null; notes: string[] } | null;
}

describe('lymphoscope bootstrap', () => {
  let e2e: E2eStack;
  const bootstrap = async (...args: string[]) => {
    const { stdout } = await run(
      process.execPath,
      [
        BIN,
        'bootstrap',
        '--stage',
        'test',
        '--bucket',
        e2e.stack.bucket,
        '--api-url',
        e2e.stack.url,
        '--json',
        ...args,
      ],
      {
        maxBuffer: 10 * 1024 * 1024,
        timeout: 180_000,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          CI: 'true',
          AWS_REGION: 'us-east-1',
          AWS_ENDPOINT_URL_S3: e2e.stack.s3Endpoint,
          AWS_ACCESS_KEY_ID: e2e.stack.s3Credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: e2e.stack.s3Credentials.secretAccessKey,
        },
      },
    );
    const lines = stdout.trim().split('\n');
    return { text: lines.slice(0, -1).join('\n'), outcome: JSON.parse(lines[lines.length - 1]) as Outcome };
  };
  let first: Awaited<ReturnType<typeof bootstrap>>;

  beforeAll(async () => {
    e2e = await startE2eStack('bootstrap');
    first = await bootstrap();
  }, 300_000);
  afterAll(() => e2e?.stop());

  it('makes an admin key that works, stored only as a hash, and audited', async () => {
    const { adminKey } = first.outcome;
    expect(adminKey.created).toBe(true);
    expect(adminKey.secret).toMatch(/^lsk_/);
    expect(first.text).toContain(adminKey.secret);
    const keys = await e2e.stack.services.auth.list();
    expect(keys.find((k) => k.id === adminKey.id)).toMatchObject({ name: BOOTSTRAP_KEY_NAME, role: 'ADMIN' });
    // No object in the bucket holds the secret itself.
    const { store } = e2e.stack.services;
    for (const { key } of await store.listAll('')) {
      expect((await store.get(key))?.body.toString('latin1')).not.toContain(adminKey.secret);
    }
    const gql = graphqlClient(e2e.stack.url, adminKey.secret!);
    const me = await gql(`{ apiKeys { id role } }`);
    expect(me.errors).toBeUndefined();
    const day = new Date().toISOString().slice(0, 10);
    const audit = await e2e.stack.services.audit.list(day, 100);
    expect(audit.items.map((i) => i.node)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          actor: 'bootstrap-cli (admin)',
          action: 'apiKey.create',
          target: adminKey.id,
        }),
      ]),
    );
  });

  it('publishes the demo model, promotes it, and the smoke test predicts a real cell with it', async () => {
    const { model, smoke } = first.outcome;
    expect(model).toMatchObject({ registered: true, promoted: true });
    expect(await e2e.stack.services.models.productionVersion()).toBe(model.version);
    expect(smoke?.ok).toBe(true);
    expect(smoke?.prediction?.modelVersion).toBe(model.version);
    expect(['ALL', 'NORMAL']).toContain(smoke?.prediction?.label);
  });

  it('run again, changes nothing: no new key, no new model version, no promotion', async () => {
    const keysBefore = await e2e.stack.services.auth.list();
    const again = await bootstrap('--api-key', first.outcome.adminKey.secret!);
    expect(again.outcome.adminKey).toEqual({ id: first.outcome.adminKey.id, created: false, secret: null });
    expect(again.outcome.model).toEqual({
      version: first.outcome.model.version,
      registered: false,
      promoted: false,
    });
    expect(again.outcome.smoke?.ok).toBe(true);
    expect(await e2e.stack.services.auth.list()).toEqual(keysBefore);
    expect((await e2e.stack.services.models.list(10)).items).toHaveLength(1);
  }, 300_000);

  it('with --new-admin-key makes another key and says how to revoke the lost one', async () => {
    const lost = await bootstrap('--new-admin-key', '--no-smoke');
    expect(lost.outcome.adminKey.created).toBe(true);
    expect(lost.outcome.adminKey.id).not.toBe(first.outcome.adminKey.id);
    expect(lost.text).toContain(`revokeApiKey(id: "${first.outcome.adminKey.id}")`);
    const gql = graphqlClient(e2e.stack.url, lost.outcome.adminKey.secret!);
    const revoked = await gql(
      `mutation { revokeApiKey(id: "${first.outcome.adminKey.id}") { id revokedAt } }`,
    );
    expect(revoked.errors).toBeUndefined();
  }, 300_000);
});
