import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createApolloServer } from '../../src/api/server';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/log';

/**
 * The stand-in the Lambda bundles use for @apollo/usage-reporting-protobuf (an esbuild alias in
 * serverless.yml). The packaging test proves a whole bundle answers; this checks that the server never
 * loads the protobuf, even where Apollo's usage reporting would be switched on by the environment.
 */
const ROOT = path.join(__dirname, '..', '..');
const mockLoaded: string[] = [];
jest.mock('@apollo/usage-reporting-protobuf', () => {
  mockLoaded.push('@apollo/usage-reporting-protobuf');
  return jest.requireActual('../../src/handlers/apollo-reporting-unbundled');
});

describe('apollo-reporting-unbundled', () => {
  it('is aliased in serverless.yml for the protobuf', () => {
    const yml = readFileSync(path.join(ROOT, 'serverless.yml'), 'utf8');
    expect(yml).toMatch(
      /^\s*'@apollo\/usage-reporting-protobuf':\s*\.\/src\/handlers\/apollo-reporting-unbundled\.ts\s*$/m,
    );
  });

  it('is never loaded: the server answers with usage reporting asked for by APOLLO_KEY', async () => {
    const saved = { key: process.env.APOLLO_KEY, ref: process.env.APOLLO_GRAPH_REF };
    process.env.APOLLO_KEY = 'service:lymphoscope:not-a-real-key';
    process.env.APOLLO_GRAPH_REF = 'lymphoscope@test';
    try {
      const log = createLogger('silent');
      const apollo = createApolloServer(loadConfig({ LYMPHOSCOPE_STAGE: 'test' }), log);
      const response = await apollo.executeOperation(
        { query: '{ __typename }' },
        { contextValue: { log, requestId: 'test' } as never },
      );
      expect(response.body).toEqual({ kind: 'single', singleResult: { data: { __typename: 'Query' } } });
      await apollo.stop();
      expect(mockLoaded).toEqual([]);
    } finally {
      for (const [name, value] of [
        ['APOLLO_KEY', saved.key],
        ['APOLLO_GRAPH_REF', saved.ref],
      ] as const)
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
    }
  });

  it('says why when loaded anyway', () => {
    expect(() => jest.requireActual('../../src/handlers/apollo-reporting-unbundled')).toThrow(
      /usage reporting and inline traces are disabled in Lymphoscope \(src\/api\/server\.ts\)/,
    );
  });
});
