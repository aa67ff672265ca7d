import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';

type LambdaHttpHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2 | string | void>;

/** Reads a body, refusing more than `maxBytes` without buffering it (API Gateway's 10 MB cap, locally). */
async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Serves a Lambda HTTP API (payload v2) handler over real HTTP on 127.0.0.1: each request becomes the
 * event API Gateway would send, so local runs and end-to-end tests go through the deployed handler's
 * exact code path (Apollo's Lambda integration included).
 */
export async function startHttpApi(options: {
  handler: LambdaHttpHandler;
  port?: number;
  host?: string;
  maxBodyBytes?: number;
}): Promise<{ url: string; port: number; server: Server; stop(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/graphql') {
      res.writeHead(url.pathname === '/' ? 302 : 404, url.pathname === '/' ? { location: '/graphql' } : {});
      res.end();
      return;
    }
    const body = await readBody(req, options.maxBodyBytes ?? 10 * 1024 * 1024);
    if (body === null) {
      res.writeHead(413, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          errors: [{ message: 'Request body too large.', extensions: { code: 'PAYLOAD_TOO_LARGE' } }],
        }),
      );
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
    const requestId = randomUUID();
    const event: APIGatewayProxyEventV2 = {
      version: '2.0',
      routeKey: `${req.method} /graphql`,
      rawPath: url.pathname,
      rawQueryString: url.search.slice(1),
      headers,
      queryStringParameters: url.search ? Object.fromEntries(url.searchParams) : undefined,
      requestContext: {
        accountId: 'local',
        apiId: 'local',
        domainName: headers.host ?? 'localhost',
        domainPrefix: 'localhost',
        http: {
          method: req.method ?? 'GET',
          path: url.pathname,
          protocol: 'HTTP/1.1',
          sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
          userAgent: headers['user-agent'] ?? '',
        },
        requestId,
        routeKey: `${req.method} /graphql`,
        stage: '$default',
        time: new Date().toUTCString(),
        timeEpoch: Date.now(),
      },
      body: body.length ? body.toString('utf8') : undefined,
      isBase64Encoded: false,
    };
    const context = { awsRequestId: requestId, getRemainingTimeInMillis: () => 29_000 } as Context;
    try {
      const result = await options.handler(event, context);
      const structured =
        typeof result === 'object' && result ? result : { statusCode: 200, body: String(result ?? '') };
      const responseHeaders: Record<string, string | number | boolean> = { ...(structured.headers ?? {}) };
      res.writeHead(structured.statusCode ?? 200, responseHeaders as Record<string, string>);
      if (structured.cookies?.length) res.setHeader('set-cookie', structured.cookies);
      res.end(
        structured.isBase64Encoded ? Buffer.from(structured.body ?? '', 'base64') : (structured.body ?? ''),
      );
    } catch (error) {
      process.stderr.write(
        JSON.stringify({
          level: 'error',
          msg: 'handler threw',
          error: String((error as Error)?.stack ?? error),
        }) + '\n',
      );
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Internal server error' }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${options.host === '0.0.0.0' ? 'localhost' : '127.0.0.1'}:${port}/graphql`,
    port,
    server,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
