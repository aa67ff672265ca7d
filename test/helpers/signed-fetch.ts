import { s3Signer } from '../../src/storage/s3-signer';
import { LOCAL_S3_REGION } from '../../src/local/s3-server';

/**
 * A raw HTTP request to the local S3, signed as the SDK signs it (SigV4 in the Authorization header)
 * with the given credentials: for tests of the server's own behaviour without the SDK's client in
 * between. The path is sent exactly as given (no normalisation of '.' or '..').
 */
export async function signedRequest(
  credentials: { accessKeyId: string; secretAccessKey: string },
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Uint8Array | string } = {},
): Promise<{ method: string; path: string; headers: Record<string, string>; host: string; port: number }> {
  const parsed = new URL(url);
  const rawPath = url.slice(url.indexOf('/', url.indexOf('//') + 2)).split('?')[0];
  const method = init.method ?? 'GET';
  const signer = s3Signer(credentials, LOCAL_S3_REGION);
  const signed = await signer.sign({
    method,
    protocol: 'http:',
    hostname: parsed.hostname,
    port: Number(parsed.port),
    path: rawPath,
    query: Object.fromEntries(parsed.searchParams),
    headers: { host: parsed.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...(init.headers ?? {}) },
  });
  return {
    method,
    path: rawPath + parsed.search,
    headers: signed.headers as Record<string, string>,
    host: parsed.hostname,
    port: Number(parsed.port),
  };
}

/** `fetch` with a SigV4 signature. */
export async function signedFetch(
  credentials: { accessKeyId: string; secretAccessKey: string },
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Uint8Array | string } = {},
): Promise<Response> {
  const { method, headers } = await signedRequest(credentials, url, init);
  const { host: _host, ...rest } = headers;
  return fetch(url, {
    method,
    headers: rest,
    body:
      init.body === undefined
        ? undefined
        : typeof init.body === 'string'
          ? init.body
          : new Uint8Array(init.body),
  });
}
