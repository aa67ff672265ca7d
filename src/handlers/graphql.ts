import { handlers, startServerAndCreateLambdaHandler } from '@as-integrations/aws-lambda';
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
const runtimeReady = initRuntime().catch((error) => services.log.error('ML runtime failed to load', { error }));

const requestHandler = handlers.createAPIGatewayProxyEventV2RequestHandler();

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
                extensions: { code: ErrorCode.PAYLOAD_TOO_LARGE },
              },
            ],
          }),
        };
      }
      await runtimeReady;
    },
  ],
  context: async ({ event, context }) =>
    createRequestContext(services, apiKeyFromHeaders(event.headers ?? {}), context?.awsRequestId ?? event.requestContext?.requestId ?? 'local'),
});
