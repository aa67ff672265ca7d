/** A tiny GraphQL-over-HTTP client for tests: real HTTP, real JSON, nothing mocked. */

// Tests index into answers freely; the server's schema is what checks their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Answer = Record<string, any>;

export interface GraphqlResult<T = Answer> {
  status: number;
  data?: T;
  errors?: Array<{ message: string; extensions?: { code?: string; [k: string]: unknown } }>;
}

export function graphqlClient(url: string, apiKey?: string) {
  return async function gql<T = Answer>(
    query: string,
    variables?: Record<string, unknown>,
    key = apiKey,
  ): Promise<GraphqlResult<T>> {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { 'x-api-key': key } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const text = await response.text();
    let body: { data?: T; errors?: GraphqlResult['errors'] } = {};
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`Non-JSON answer (${response.status}): ${text.slice(0, 300)}`);
    }
    return { status: response.status, data: body.data ?? undefined, errors: body.errors };
  };
}

/** Fails with the server's errors in the message, so a broken test says why. */
export function ok<T>(result: GraphqlResult<T>): T {
  if (result.errors?.length || !result.data) {
    throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  }
  return result.data;
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs: number,
  everyMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
