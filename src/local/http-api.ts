import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { serveStatic } from './static-files';

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
 * What serverless.yml's httpApi.cors makes API Gateway answer, so a console or app served from another
 * origin (a static host, a dev server) can call the local API. Keys travel in headers, not cookies, so
 * any origin may ask.
 */
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'content-type, authorization, x-api-key, apollo-require-preflight',
  'access-control-max-age': '600',
};

/**
 * Lambda runs one event per container at a time; locally every invocation shares this process's one event
 * loop with the S3 server. Hundreds of predictions at once would starve it: CPU-bound inference delays
 * the callbacks that complete S3 connections until the SDK's 1.5 s connection timeout fires, and
 * requests fail with UNAVAILABLE although nothing is down. A few invocations at a time, the rest queued
 * in arrival order, keeps the local stack honest about throughput and free of those phantom faults.
 */
function invocationSlots(max: number): { acquire(): Promise<void>; release(): void } {
  let running = 0;
  const waiting: Array<() => void> = [];
  return {
    acquire() {
      if (running < max) {
        running += 1;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    release() {
      const next = waiting.shift();
      if (next) next();
      else running -= 1;
    },
  };
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
  /** Folders served as static files, by URL prefix (e.g. { '/console': 'console/dist' }). */
  staticDirs?: Record<string, string>;
  /** Handler invocations running at once; the rest wait their turn in arrival order. Default 4. */
  maxConcurrentInvocations?: number;
  /** Paths answered with a 302 to another, e.g. { '/explorer': '/console/explorer/' }. */
  redirects?: Record<string, string>;
  /** HTML answered at / (see landingPage); without it / redirects to /graphql. */
  landingPage?: string;
}): Promise<{ url: string; port: number; server: Server; stop(): Promise<void> }> {
  const invocations = invocationSlots(options.maxConcurrentInvocations ?? 4);
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const mount = Object.keys(options.staticDirs ?? {}).find(
      (prefix) => url.pathname === prefix || url.pathname.startsWith(`${prefix}/`),
    );
    if (mount) {
      await serveStatic(req, res, url.pathname, mount, options.staticDirs![mount]);
      return;
    }
    if (url.pathname === '/graphql' && req.method === 'OPTIONS') {
      res.writeHead(204, CORS_HEADERS);
      res.end();
      return;
    }
    const redirect = options.redirects?.[url.pathname];
    if (redirect) {
      res.writeHead(302, { location: redirect });
      res.end();
      return;
    }
    if (url.pathname === '/' && options.landingPage && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : options.landingPage);
      return;
    }
    if (url.pathname !== '/graphql') {
      res.writeHead(url.pathname === '/' ? 302 : 404, url.pathname === '/' ? { location: '/graphql' } : {});
      res.end();
      return;
    }
    const maxBodyBytes = options.maxBodyBytes ?? 10 * 1024 * 1024;
    const body = await readBody(req, maxBodyBytes);
    if (body === null) {
      // API Gateway's own 413 carries no GraphQL body; locally we say at least which limit was hit.
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end(
        JSON.stringify({
          errors: [
            {
              message: `The request body is over ${maxBodyBytes} bytes, API Gateway's limit. Refer to uploaded images (uploadId, imageId) instead of sending them inline.`,
              extensions: { code: 'PAYLOAD_TOO_LARGE', limit: maxBodyBytes },
            },
          ],
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
    await invocations.acquire();
    try {
      const result = await options.handler(event, context);
      const structured =
        typeof result === 'object' && result ? result : { statusCode: 200, body: String(result ?? '') };
      const responseHeaders: Record<string, string | number | boolean> = {
        ...(structured.headers ?? {}),
        'access-control-allow-origin': CORS_HEADERS['access-control-allow-origin'],
      };
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
    } finally {
      invocations.release();
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
