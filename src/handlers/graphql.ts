import { handlers, startServerAndCreateLambdaHandler } from '@as-integrations/aws-lambda';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createApolloServer } from '../api/server';
import { loadConfig } from '../config';
import { initRuntime } from '../ml/runtime';
import { ErrorCode } from '../errors';
import { apiKeyFromHeaders, createRequestContext } from '../resolvers/context';
import { createServices } from '../services';

// Built once per Lambda container (cold start) and reused by every request it serves.
const config = loadConfig();
const services = createServices(config);
const server = createApolloServer(config, services.log);
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

/** The HTTP API (v2 payload) entry point: POST/GET /graphql. */
export const handler = startServerAndCreateLambdaHandler(server, requestHandler, {
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
                extensions: { code: ErrorCode.PAYLOAD_TOO_LARGE, limit: config.limits.requestBytes },
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
