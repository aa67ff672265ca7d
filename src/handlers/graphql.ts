import { handlers, startServerAndCreateLambdaHandler } from '@as-integrations/aws-lambda';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { checkDocumentShape, checkVariablesShape, QUERY_NESTING, VARIABLE_VALUES } from '../api/limits';
import { CallerLimiter } from '../api/rate-limits';
import { createApolloServer } from '../api/server';
import { loadConfig } from '../config';
import { configureMl } from '../ml/settings';
import { ErrorCode, LymphoscopeError } from '../errors';
import { apiKeyFromHeaders, createRequestContext } from '../resolvers/context';
import { createServices } from '../services';
import { withPixelBudget } from '../services/work-budget';
import { createMetrics, MetricUnit } from './metrics';

// Built once per Lambda container (cold start) and reused by every request it serves.
const config = loadConfig();
configureMl(config.ml);
const services = createServices(config);
const server = createApolloServer(config, services.log);
const metrics = createMetrics(config.stage);
// No ML runtime is started here: onnxruntime serves every version with an ONNX twin, and TF.js is loaded
// only by what needs it (src/ml/serving/tfjs-network.ts), which keeps it out of most cold starts.

/**
 * A POST's JSON body as the middleware below parsed it (requestOf), for the Lambda integration to use
 * instead of parsing the same text again: 1.8 ms for a predict's 0.8 MB body on this machine.
 */
const parsedBodies = new WeakMap<APIGatewayProxyEventV2, unknown>();
const eventV2 = handlers.createAPIGatewayProxyEventV2RequestHandler();
const requestHandler: typeof eventV2 = {
  ...eventV2,
  fromEvent(event) {
    if (!parsedBodies.has(event)) return eventV2.fromEvent(event);
    // Everything but the body as the integration reads it; the body as it would parse it, where it would.
    const request = eventV2.fromEvent({ ...event, body: undefined });
    if (!request.headers.get('content-type')?.startsWith('application/json')) return eventV2.fromEvent(event);
    request.body = parsedBodies.get(event);
    return request;
  },
};

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

/**
 * One id per request, in the log, the answer's `x-request-id` and INTERNAL errors: Lambda's own
 * (its START/END/REPORT log lines carry it) where there is one, else API Gateway's.
 */
const requestIds = new WeakMap<APIGatewayProxyEventV2, string>();
const requestIdOf = (event: APIGatewayProxyEventV2) =>
  requestIds.get(event) ?? event.requestContext?.requestId ?? 'local';

/** An answer given before Apollo runs; like Apollo's, it carries the request id in `x-request-id`. */
const errorResult = (
  event: APIGatewayProxyEventV2,
  statusCode: number,
  code: string,
  message: string,
  details?: Record<string, unknown>,
): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: {
    'content-type': 'application/json',
    'x-request-id': requestIdOf(event),
  },
  body: JSON.stringify({ errors: [{ message, extensions: { code, ...details } }] }),
});

/**
 * The GraphQL document and variables of a request (POST JSON body, or GET `?query=&variables=`), as far
 * as they can be read; Apollo reports whatever cannot.
 */
function requestOf(event: APIGatewayProxyEventV2): { query: string | null; variables: unknown } {
  const parse = (text: string | undefined): unknown => {
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return undefined; // not JSON: Apollo answers BAD_REQUEST
    }
  };
  if (event.requestContext?.http?.method === 'GET') {
    const params = event.queryStringParameters ?? {};
    return { query: params.query ?? null, variables: parse(params.variables) };
  }
  const body = parse(
    event.body && event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body,
  ) as { query?: unknown; variables?: unknown } | null | undefined;
  if (body !== undefined) parsedBodies.set(event, body);
  return {
    query: typeof body?.query === 'string' ? body.query : null,
    variables: body && typeof body === 'object' ? body.variables : undefined,
  };
}

const apolloHandler = startServerAndCreateLambdaHandler(server, requestHandler, {
  middleware: [
    async (event) => {
      // Refuse oversized bodies before Apollo parses them.
      const size = event.body ? Buffer.byteLength(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : 0;
      if (size > config.limits.requestBytes) {
        return errorResult(
          event,
          413,
          ErrorCode.PAYLOAD_TOO_LARGE,
          `The request body is ${size} bytes; the limit is ${config.limits.requestBytes}. Upload images with createImageUpload.`,
          { limit: config.limits.requestBytes },
        );
      }
      // graphql-js parses recursively: a document nested thousands deep would overflow its stack.
      // Refuse too many tokens or too deep a nesting in one iterative pass, before anything else.
      const { query, variables } = requestOf(event);
      const refusal =
        query === null
          ? null
          : checkDocumentShape(query, { tokens: config.limits.queryTokens, nesting: QUERY_NESTING });
      if (refusal) return errorResult(event, 400, 'GRAPHQL_PARSE_FAILED', refusal);
      // Likewise the variables, before graphql coerces every element of a list (checkVariablesShape).
      const tooMany = checkVariablesShape(variables, { values: VARIABLE_VALUES, nesting: QUERY_NESTING });
      if (tooMany) return errorResult(event, 400, ErrorCode.BAD_USER_INPUT, tooMany);
      return typedRequestErrors;
    },
  ],
  context: async ({ event }) =>
    createRequestContext(services, apiKeyFromHeaders(event.headers ?? {}), requestIdOf(event), () =>
      limiter.authenticationFailed(sourceIpOf(event)),
    ),
});

const limiter = new CallerLimiter(config.callers);
const sourceIpOf = (event: APIGatewayProxyEventV2) => event.requestContext?.http?.sourceIp ?? 'unknown';

/**
 * Each request is first admitted by the
 * per-caller limits (HTTP 429 RATE_LIMITED, with Retry-After, before anything is parsed or looked up),
 * then served by Apollo with its own pixel budget.
 */
async function admitAndServe(
  event: APIGatewayProxyEventV2,
  context: Context,
): Promise<APIGatewayProxyStructuredResultV2> {
  if (context?.awsRequestId) requestIds.set(event, context.awsRequestId);
  let release: () => void;
  try {
    release = limiter.admit({ apiKey: apiKeyFromHeaders(event.headers ?? {}), sourceIp: sourceIpOf(event) });
  } catch (error) {
    if (!(error instanceof LymphoscopeError)) throw error;
    services.log.warn('rate limited', { sourceIp: sourceIpOf(event), ...error.details });
    const result = errorResult(event, 429, error.code, error.message, error.details);
    result.headers = { ...result.headers, 'retry-after': String(error.details?.retryAfterSeconds ?? 1) };
    return result;
  }
  try {
    return (await withPixelBudget(config.limits.pixelsPerRequest, () =>
      apolloHandler(event, context, () => undefined),
    )) as APIGatewayProxyStructuredResultV2;
  } finally {
    release();
  }
}

/**
 * The HTTP API (v2 payload) entry point: POST/GET /graphql. On Lambda each invocation also records
 * `requests`, `latency` and, by status class, `clientErrors` / `serverErrors` (plus `ColdStart` once
 * per container); a GraphQL error answered with 200 counts as a request, not an error.
 */
export async function handler(
  event: APIGatewayProxyEventV2,
  context: Context,
): Promise<APIGatewayProxyStructuredResultV2> {
  const started = performance.now();
  let statusCode = 500;
  try {
    const result = await admitAndServe(event, context);
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
}
