import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP proxy in front of the local S3 that loses answers: a request it is told to drop is
 * forwarded, the server applies it and answers, and the proxy then cuts the client's connection
 * instead of passing the answer on. The client sees a reset connection after a write that took
 * effect, exactly as when a network drops a response, and the SDK retries through a real round trip.
 * Headers (Host included) are forwarded verbatim, so SigV4 signatures still verify upstream. It can
 * also answer a request itself, as S3 does when it throttles or fails (503 SlowDown), without
 * forwarding it.
 */
export interface LossyProxy {
  endpoint: string;
  /** Drop the answer to the next request for which `matches` is true (once). */
  dropNextAnswer(matches: (req: IncomingMessage) => boolean): void;
  /** Answer the next `times` requests for which `matches` is true with `answer`, not forwarding them. */
  answerNext(matches: (req: IncomingMessage) => boolean, answer: CannedAnswer, times?: number): void;
  /** Requests forwarded, as "METHOD path", in order. */
  readonly forwarded: string[];
  /** Every request received (answered here or forwarded), with its headers as sent on the wire. */
  readonly received: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  /** Answers dropped so far. */
  dropped: number;
  stop(): Promise<void>;
}

export interface CannedAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export async function startLossyProxy(upstream: string): Promise<LossyProxy> {
  const target = new URL(upstream);
  let rule: ((req: IncomingMessage) => boolean) | null = null;
  let canned: { matches: (req: IncomingMessage) => boolean; answer: CannedAnswer; times: number } | null =
    null;
  const proxy: LossyProxy = {
    endpoint: '',
    forwarded: [],
    received: [],
    dropped: 0,
    dropNextAnswer(matches) {
      rule = matches;
    },
    answerNext(matches, answer, times = 1) {
      canned = { matches, answer, times };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  const server: Server = createServer((req, res) => {
    proxy.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (canned !== null && canned.matches(req)) {
      const { answer } = canned;
      canned.times -= 1;
      if (canned.times === 0) canned = null;
      req.resume();
      req.on('end', () => res.writeHead(answer.status, answer.headers).end(answer.body));
      return;
    }
    const drop = rule !== null && rule(req);
    if (drop) rule = null;
    proxy.forwarded.push(`${req.method} ${req.url}`);
    const upstreamReq = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (upstreamRes) => {
        if (drop) {
          // The write is done upstream; its answer never reaches the client.
          upstreamRes.resume();
          upstreamRes.on('end', () => {
            proxy.dropped += 1;
            req.socket.destroy();
          });
          return;
        }
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstreamReq.on('error', () => req.socket.destroy());
    req.pipe(upstreamReq);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
