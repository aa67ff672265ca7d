import { expectAliased, expectServerAnswers } from '../helpers/bundle-stand-ins';

/**
 * The stand-in the Lambda bundles use for @apollo/usage-reporting-protobuf (an esbuild alias in
 * serverless.yml). The packaging test proves a whole bundle answers; this checks that the server never
 * loads the protobuf, even where Apollo's usage reporting would be switched on by the environment.
 */
const mockLoaded: string[] = [];
jest.mock('@apollo/usage-reporting-protobuf', () => {
  mockLoaded.push('@apollo/usage-reporting-protobuf');
  return jest.requireActual('../../src/handlers/apollo-reporting-unbundled');
});

describe('apollo-reporting-unbundled', () => {
  it('is aliased in serverless.yml for the protobuf', () => {
    expectAliased('@apollo/usage-reporting-protobuf', 'apollo-reporting-unbundled');
  });

  it('is never loaded: the server answers with usage reporting asked for by APOLLO_KEY', async () => {
    const saved = { key: process.env.APOLLO_KEY, ref: process.env.APOLLO_GRAPH_REF };
    process.env.APOLLO_KEY = 'service:lymphoscope:not-a-real-key';
    process.env.APOLLO_GRAPH_REF = 'lymphoscope@test';
    try {
      await expectServerAnswers();
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
