import type S3rver from 's3rver';
import { handleBrowserPost, isBrowserPost } from './s3-browser-post';
import type { LocalS3Signatures } from './s3-signature';
import { respondWithError, type KeyedLocks } from './s3rver-compat';

/**
 * The front door of the local S3: it trusts no one.
 * - CORS only for the origins the stack allows (the local API's own, where the console is served).
 *   A request that carries any other Origin is refused outright, preflight or not: a page on another
 *   origin can send a "simple" POST without asking first.
 * - Every other request must carry a valid SigV4 signature (s3-signature.ts) or be a browser POST
 *   whose signed policy holds (s3-browser-post.ts). Anonymous requests get 403 AccessDenied.
 */
export function trustNoOne(deps: {
  store: S3rver.Store;
  locks: KeyedLocks;
  signatures: LocalS3Signatures;
  allowedOrigins: ReadonlySet<string>;
  maxBodyBytes: number;
}): S3rver.Middleware {
  return async (ctx, next) => {
    const origin = typeof ctx.headers.origin === 'string' ? ctx.headers.origin : undefined;
    if (origin !== undefined) {
      if (!deps.allowedOrigins.has(origin)) {
        respondWithError(ctx, 403, 'CORSResponse', 'This CORS request is not allowed from this origin.');
        return;
      }
      ctx.set('Access-Control-Allow-Origin', origin);
      ctx.set('Vary', 'Origin');
      ctx.set('Access-Control-Expose-Headers', 'ETag');
      if (ctx.method === 'OPTIONS') {
        ctx.set('Access-Control-Allow-Methods', 'GET, HEAD, PUT, POST');
        const requested = ctx.headers['access-control-request-headers'];
        if (typeof requested === 'string') ctx.set('Access-Control-Allow-Headers', requested);
        ctx.set('Access-Control-Max-Age', '600');
        ctx.status = 200;
        ctx.body = '';
        return;
      }
    } else if (ctx.method === 'OPTIONS') {
      respondWithError(ctx, 400, 'BadRequest', 'Insufficient information. Origin request header needed.');
      return;
    }

    const bucketOnly = /^\/[^/]+\/?$/.exec(ctx.path);
    if (bucketOnly && isBrowserPost(ctx, true)) {
      await handleBrowserPost(ctx, decodeURIComponent(ctx.path.replace(/^\/|\/$/g, '')), deps);
      return;
    }
    const verdict = await deps.signatures.verifyRequest({
      method: ctx.method,
      host: String(ctx.headers.host ?? ''),
      path: ctx.path,
      querystring: ctx.querystring,
      headers: ctx.headers,
    });
    if (!verdict.ok) {
      respondWithError(ctx, verdict.status, verdict.code, verdict.message);
      return;
    }
    await next();
  };
}
