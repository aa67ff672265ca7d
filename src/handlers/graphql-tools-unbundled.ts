/**
 * Stands in, inside the Lambda bundles only (an esbuild alias in serverless.yml), for
 * @graphql-tools/schema, which Apollo Server imports for one call: building a schema from `typeDefs`
 * and `resolvers`. createApolloServer gives it the schema built by src/api/schema.ts instead, so the
 * call never happens, and graphql-tools (0.19 MB with its merge and utils packages) is left out of the
 * API's bundle. Calling it anyway means a server was given `typeDefs`, which the bundle cannot build.
 */
export function makeExecutableSchema(): never {
  throw new Error(
    'graphql-tools is not bundled in Lymphoscope (src/handlers/graphql-tools-unbundled.ts): give Apollo ' +
      'Server the schema built by src/api/schema.ts, not typeDefs.',
  );
}
