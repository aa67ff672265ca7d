/**
 * Stands in, inside the Lambda bundles only (an esbuild alias in serverless.yml), for
 * @apollo/usage-reporting-protobuf: Apollo's trace format, used only by its usage-reporting and
 * inline-trace plugins. createApolloServer installs both as disabled, so Apollo Server never loads them;
 * leaving the 0.2 MB protobuf out shortens every cold start's compile (npm run bench:cold-start).
 * Loading it anyway means a plugin was enabled that the bundle cannot run: it says so.
 */
refuse();

// The names those plugins import, so that the bundle links; never reached.
export const Trace = undefined;
export const google = undefined;
export const Report = undefined;
export const ReportHeader = undefined;

function refuse() {
  throw new Error(
    'Apollo usage reporting and inline traces are disabled in Lymphoscope (src/api/server.ts) and not ' +
      'bundled; enable them there and remove the @apollo/usage-reporting-protobuf alias from serverless.yml.',
  );
}
