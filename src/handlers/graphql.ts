import { handlers, startServerAndCreateLambdaHandler } from '@as-integrations/aws-lambda';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createApolloServer } from '../api/server';
import { loadConfig } from '../config';
import { initRuntime } from '../ml/runtime';
import { ErrorCode } from '../errors';
import { apiKeyFromHeaders, createRequestContext } from '../resolvers/context';
import { createServices } from '../services';
import { createMetrics, MetricUnit } from './metrics';

// Built once per Lambda container (cold start) and reused by every request it serves.
const config = loadConfig();
const services = createServices(config);
const server = createApolloServer(config, services.log);
const metrics = createMetrics(config.stage);
// Start loading the ML runtime now, in parallel with the first request's parsing.
const runtimeReady = initRuntime().catch((error) =>
  services.log.error('ML runtime failed to load', { error }),
);

const requestHandler = handlers.createAPIGatewayProxyEventV2RequestHandler();

/**
 * The Lambda integration answers a request it cannot even parse (a body that is not JSON) with a bare
 * text/plain 400 holding the parser's message. Clients switch on `extensions.code`, so that answer is
 * rewritten as a GraphQL error like every other; the parser's message is not echoed.
 */
async function typedRequestErrors(result: APIGatewayProxyStructuredResultV2): Promise<void> {
  if (result.statusCode === undefined || result.statusCode < 400 || result.body?.trimStart().startsWith('{'))
    return;
  result.body = JSON.stringify({
    errors: [
      {
        message: 'The request is not a valid GraphQL request: send a JSON body with a `query` string.',
        extensions: { code: 'BAD_REQUEST' },
      },
    ],
  });
  result.headers = { ...(result.headers ?? {}), 'content-type': 'application/json' };
}

const apolloHandler = startServerAndCreateLambdaHandler(server, requestHandler, {
  middleware: [
    async (event) => {
      // Refuse oversized bodies before Apollo parses them.
      const size = event.body ? Buffer.byteLength(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : 0;
      if (size > config.limits.requestBytes) {
        return {
          statusCode: 413,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            errors: [
              {
                message: `The request body is ${size} bytes; the limit is ${config.limits.requestBytes}. Upload images with createImageUpload.`,
                extensions: { code: ErrorCode.PAYLOAD_TOO_LARGE },
              },
            ],
          }),
        };
      }
      await runtimeReady;
      return typedRequestErrors;
    },
  ],
  context: async ({ event, context }) =>
    createRequestContext(
      services,
      apiKeyFromHeaders(event.headers ?? {}),
      context?.awsRequestId ?? event.requestContext?.requestId ?? 'local',
    ),
});

/**
 * The HTTP API (v2 payload) entry point: POST/GET /graphql. On Lambda each invocation also records
 * `requests`, `latency` and, by status class, `clientErrors` / `serverErrors` (plus `ColdStart` once
 * per container); a GraphQL error answered with 200 counts as a request, not an error.
 */
export const handler: typeof apolloHandler = async (event, context, callback) => {
  const started = performance.now();
  let statusCode = 500;
  try {
    const result = (await apolloHandler(event, context, callback)) as APIGatewayProxyStructuredResultV2;
    statusCode = result?.statusCode ?? 200;
    return result;
  } finally {
    if (metrics) {
      metrics.captureColdStartMetric();
      metrics.addMetric('requests', MetricUnit.Count, 1);
      metrics.addMetric('latency', MetricUnit.Milliseconds, performance.now() - started);
      if (statusCode >= 500) metrics.addMetric('serverErrors', MetricUnit.Count, 1);
      else if (statusCode >= 400) metrics.addMetric('clientErrors', MetricUnit.Count, 1);
      metrics.publishStoredMetrics();
    }
  }
};
