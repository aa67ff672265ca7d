import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createApolloServer } from '../../src/api/server';
import { loadConfig } from '../../src/config';
import { makeExecutableSchema } from '../../src/handlers/graphql-tools-unbundled';
import { createLogger } from '../../src/observability/log';

/**
 * The stand-in the Lambda bundles use for @graphql-tools/schema (an esbuild alias in serverless.yml).
 * The packaging test proves a whole bundle answers; this checks that the server never calls into
 * graphql-tools, which the stand-in would refuse.
 */
const ROOT = path.join(__dirname, '..', '..');
jest.mock('@graphql-tools/schema', () => jest.requireActual('../../src/handlers/graphql-tools-unbundled'));

describe('graphql-tools-unbundled', () => {
  it('is aliased in serverless.yml for @graphql-tools/schema', () => {
    const yml = readFileSync(path.join(ROOT, 'serverless.yml'), 'utf8');
    expect(yml).toMatch(
      /^\s*'@graphql-tools\/schema':\s*\.\/src\/handlers\/graphql-tools-unbundled\.ts\s*$/m,
    );
  });

  it('is never called: the server answers with the schema it is given', async () => {
    const log = createLogger('silent');
    const apollo = createApolloServer(loadConfig({ LYMPHOSCOPE_STAGE: 'test' }), log);
    const response = await apollo.executeOperation(
      { query: '{ __typename }' },
      { contextValue: { log, requestId: 'test' } as never },
    );
    expect(response.body).toEqual({ kind: 'single', singleResult: { data: { __typename: 'Query' } } });
    await apollo.stop();
  });

  it('says what to do if a server is given typeDefs', () => {
    expect(() => makeExecutableSchema()).toThrow(
      /give Apollo Server the schema built by src\/api\/schema.ts/,
    );
  });
});
