import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { TestS3 } from '../helpers/s3';
import { handlerEnvironment, lambdaContext } from '../helpers/handler-env';

/**
 * The HTTP API's Lambda entry point, called with API Gateway v2 events as API Gateway builds them: how it
 * reads the event (method, base64 bodies, headers, request ids) and what it answers before Apollo runs.
 */
describe('graphql handler', () => {
  let s3: TestS3;
  let handler: typeof import('../../src/handlers/graphql').handler;
  const REQUEST_BYTES = 4096;

  beforeAll(async () => {
    s3 = await handlerEnvironment({ LYMPHOSCOPE_MAX_REQUEST_BYTES: String(REQUEST_BYTES) });
    ({ handler } = await import('../../src/handlers/graphql'));
  });
  afterAll(() => s3?.stop());

  let sourceIp = 0;
  const event = (
    body: string | undefined,
    options: {
      method?: string;
      base64?: boolean;
      headers?: Record<string, string>;
      query?: Record<string, string>;
    } = {},
  ): APIGatewayProxyEventV2 =>
    ({
      version: '2.0',
      routeKey: `${options.method ?? 'POST'} /graphql`,
      rawPath: '/graphql',
      rawQueryString: new URLSearchParams(options.query ?? {}).toString(),
      queryStringParameters: options.query,
      headers: { 'content-type': 'application/json', ...options.headers },
      requestContext: {
        requestId: 'apigw-request-1',
        // One address per request: the per-caller limits are not what is tested here.
        http: {
          method: options.method ?? 'POST',
          path: '/graphql',
          sourceIp: `10.1.0.${++sourceIp}`,
          protocol: 'HTTP/1.1',
          userAgent: 'test',
        },
      },
      body,
      isBase64Encoded: options.base64 ?? false,
    }) as unknown as APIGatewayProxyEventV2;

  const json = (result: { body?: string }) => JSON.parse(result.body ?? '');
  const HEALTH = JSON.stringify({ query: '{ health { status stage storageReachable } }' });

  it("answers a query with Lambda's request id in x-request-id", async () => {
    const result = await handler(event(HEALTH), lambdaContext('lambda-req-1'));
    expect(result.statusCode).toBe(200);
    expect(json(result).data.health).toEqual({ status: 'ok', stage: 'test', storageReachable: true });
    expect(result.headers?.['x-request-id']).toBe('lambda-req-1');
  });

  it('decodes a base64-encoded body, as API Gateway sends binary-safe payloads', async () => {
    const result = await handler(
      event(Buffer.from(HEALTH).toString('base64'), { base64: true }),
      lambdaContext('r2'),
    );
    expect(json(result).data.health.status).toBe('ok');
  });

  it('parses a JSON body once, and leaves a body sent as text/plain to Apollo as it was', async () => {
    const parse = jest.spyOn(JSON, 'parse');
    try {
      const result = await handler(event(HEALTH), lambdaContext('once'));
      expect(json(result).data.health.status).toBe('ok');
      expect(parse.mock.calls.filter(([text]) => text === HEALTH)).toHaveLength(1);
    } finally {
      parse.mockRestore();
    }
    // Apollo takes a text/plain body as a string, not an operation, and its CSRF check refuses it.
    const plain = await handler(
      event(HEALTH, { headers: { 'content-type': 'text/plain' } }),
      lambdaContext('p'),
    );
    expect(plain.statusCode).toBe(400);
    expect(json(plain).errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  it('answers a body that is not JSON with a typed BAD_REQUEST error, not the parser text', async () => {
    const result = await handler(event('{"query": "{ health { status } }"'), lambdaContext('r3'));
    expect(result.statusCode).toBe(400);
    expect(result.headers?.['content-type']).toMatch(/application\/json/);
    const [error] = json(result).errors;
    expect(error.extensions.code).toBe('BAD_REQUEST');
    expect(error.message).toBe(
      'The request is not a valid GraphQL request: send a JSON body with a `query` string.',
    );
  });

  it('refuses a body over LYMPHOSCOPE_MAX_REQUEST_BYTES with 413, counting base64 bodies by their bytes', async () => {
    const big = JSON.stringify({ query: `{ health { status } } # ${'x'.repeat(REQUEST_BYTES)}` });
    const plain = await handler(event(big), lambdaContext('r4'));
    expect(plain.statusCode).toBe(413);
    expect(json(plain).errors[0].extensions).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      limit: REQUEST_BYTES,
    });
    expect(plain.headers?.['x-request-id']).toBe('r4');
    // The same bytes in base64 are a third longer as text but no larger: what counts is the decoded size.
    const justUnder = JSON.stringify({ query: `{ health { status } } # ${'x'.repeat(REQUEST_BYTES - 100)}` });
    const encoded = await handler(
      event(Buffer.from(justUnder).toString('base64'), { base64: true }),
      lambdaContext('r5'),
    );
    expect(encoded.statusCode).toBe(200);
  });

  it('reads a GET query from the query string (with the CSRF preflight header)', async () => {
    const result = await handler(
      event(undefined, {
        method: 'GET',
        query: { query: '{ health { status } }' },
        headers: { 'apollo-require-preflight': 'true' },
      }),
      lambdaContext('r6'),
    );
    expect(result.statusCode).toBe(200);
    expect(json(result).data.health.status).toBe('ok');
  });

  it('refuses a document nested too deep before parsing it, and asks for a key where one is needed', async () => {
    const deep = JSON.stringify({ query: `{ health ${'{ a '.repeat(400)}${'}'.repeat(400)} }` });
    const nested = await handler(event(deep), lambdaContext('r7'));
    expect(nested.statusCode).toBe(400);
    expect(json(nested).errors[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
    const noKey = await handler(
      event(JSON.stringify({ query: '{ datasets { edges { node { id } } } }' })),
      lambdaContext('r8'),
    );
    expect(json(noKey).errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });
});
