import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createApolloServer } from '../../src/api/server';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/log';

/**
 * For the stand-ins that serverless.yml's esbuild aliases put in the Lambda bundles in place of packages
 * the API never runs (src/handlers/*-unbundled.ts).
 */
const ROOT = path.join(__dirname, '..', '..');

/** serverless.yml aliases `pkg` to `src/handlers/<standIn>.ts`. */
export function expectAliased(pkg: string, standIn: string): void {
  const yml = readFileSync(path.join(ROOT, 'serverless.yml'), 'utf8');
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  expect(yml).toMatch(
    new RegExp(`^\\s*'${escape(pkg)}':\\s*\\./src/handlers/${escape(standIn)}\\.ts\\s*$`, 'm'),
  );
}

/** A server as createApolloServer builds it answers a query, then stops. */
export async function expectServerAnswers(): Promise<void> {
  const log = createLogger('silent');
  const apollo = createApolloServer(loadConfig({ LYMPHOSCOPE_STAGE: 'test' }), log);
  const response = await apollo.executeOperation(
    { query: '{ __typename }' },
    { contextValue: { log, requestId: 'test' } as never },
  );
  expect(response.body).toEqual({ kind: 'single', singleResult: { data: { __typename: 'Query' } } });
  await apollo.stop();
}
