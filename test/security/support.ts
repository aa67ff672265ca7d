import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../src/local/stack';
import { graphqlClient, ok, type GraphqlResult } from '../helpers/graphql';

/** A local stack in a fresh directory, with a known admin key and no demo model. */
export async function startSecurityStack(
  name: string,
  options: Partial<LocalStackOptions> = {},
): Promise<{
  stack: LocalStack;
  adminKey: string;
  admin: ReturnType<typeof graphqlClient>;
  cleanup(): Promise<void>;
}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `lymphoscope-security-${name}-`));
  const adminKey = `lsk_security_${name.replace(/[^A-Za-z0-9]/g, '_')}_admin_0123456789`;
  const stack = await startLocalStack({
    dataDir: dir,
    adminKey,
    demoModel: false,
    logLevel: 'silent',
    workerRetryDelayMs: 200,
    ...options,
  });
  return {
    stack,
    adminKey,
    admin: graphqlClient(stack.url, adminKey),
    async cleanup() {
      await stack.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export { registerUntrainedModel } from '../helpers/untrained-model';

export type Role = 'PARTNER' | 'SCIENTIST' | 'ADMIN';

/** Creates a key of the role through the API; returns its id and secret. */
export async function createKey(
  admin: ReturnType<typeof graphqlClient>,
  name: string,
  role: Role,
): Promise<{ id: string; secret: string }> {
  const { createApiKey } = ok(
    await admin(
      'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id role } secret } }',
      {
        input: { name, role },
      },
    ),
  );
  return { id: createApiKey.apiKey.id, secret: createApiKey.secret };
}

/** Every key in the bucket, sorted. */
export async function bucketKeys(stack: LocalStack): Promise<string[]> {
  return (await stack.services.store.listAll('')).map((o) => o.key).sort();
}

/** The error code of a result that must have failed (and nothing else). */
export function errorCode(result: GraphqlResult): string | undefined {
  expect(result.errors?.length).toBeGreaterThan(0);
  return result.errors?.[0]?.extensions?.code;
}

/** No error may carry a stack trace, in its extensions or hidden in its message. */
export function expectNoStack(result: GraphqlResult | { errors?: unknown }): void {
  const text = JSON.stringify(result.errors ?? []);
  expect(text).not.toMatch(/stacktrace/i);
  expect(text).not.toMatch(/\n\s+at /);
  expect(text).not.toMatch(/\.ts:\d+|\.js:\d+|node_modules/);
}

/** POSTs raw text as a GraphQL request, with full control of the headers. */
export async function rawPost(
  url: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method: 'POST', headers, body });
  return { status: response.status, text: await response.text() };
}
