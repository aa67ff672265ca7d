import { makeExecutableSchema } from '../../src/handlers/graphql-tools-unbundled';
import { expectAliased, expectServerAnswers } from '../helpers/bundle-stand-ins';

/**
 * The stand-in the Lambda bundles use for @graphql-tools/schema (an esbuild alias in serverless.yml).
 * The packaging test proves a whole bundle answers; this checks that the server never calls into
 * graphql-tools, which the stand-in would refuse.
 */
jest.mock('@graphql-tools/schema', () => jest.requireActual('../../src/handlers/graphql-tools-unbundled'));

describe('graphql-tools-unbundled', () => {
  it('is aliased in serverless.yml for @graphql-tools/schema', () => {
    expectAliased('@graphql-tools/schema', 'graphql-tools-unbundled');
  });

  it('is never called: the server answers with the schema it is given', async () => {
    await expectServerAnswers();
  });

  it('says what to do if a server is given typeDefs', () => {
    expect(() => makeExecutableSchema()).toThrow(
      /give Apollo Server the schema built by src\/api\/schema.ts/,
    );
  });
});
