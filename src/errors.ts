/**
 * The error codes a client may switch on. Every GraphQL error Lymphoscope raises on purpose carries one
 * of these in `extensions.code`; anything else is a bug and reaches the client as INTERNAL with no
 * details (the details go to the log).
 *
 * This module is the public surface: add codes, never rename or remove one.
 */
export enum ErrorCode {
  /** The input is malformed or out of range; the message names the field and the rule. */
  BAD_USER_INPUT = 'BAD_USER_INPUT',
  /** The bytes are not an image we can read (wrong magic, corrupt, truncated, unsupported format). */
  UNSUPPORTED_IMAGE = 'UNSUPPORTED_IMAGE',
  /** The input is larger than a documented limit (bytes, pixel dimensions, batch size). */
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  /** The thing named does not exist, or the caller may not know it exists. */
  NOT_FOUND = 'NOT_FOUND',
  /** The request lost a race or contradicts the current state (stale version, duplicate, wrong status). */
  CONFLICT = 'CONFLICT',
  /** No API key, or a key that is unknown or revoked. */
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  /** The key is valid but its role may not do this. */
  FORBIDDEN = 'FORBIDDEN',
  /**
   * The caller (its API key, or its address when it sends none) is over a rate or concurrency limit.
   * HTTP 429; `extensions.limit` is the limit that was hit, `extensions.limitName` the setting that
   * holds it and `extensions.retryAfterSeconds` (also the Retry-After header) when to try again.
   */
  RATE_LIMITED = 'RATE_LIMITED',
  /** A dependency (object storage, the training worker) did not answer in time; retry later. */
  UNAVAILABLE = 'UNAVAILABLE',
  /** An unexpected failure on our side; the log has the details, the client gets none. */
  INTERNAL = 'INTERNAL',
}

/**
 * An error whose message is safe to show to a client. Services throw it; the GraphQL layer turns it
 * into a GraphQLError with `extensions.code`. It knows no transport, so the ML core and the CLI can
 * throw it too.
 */
export class LymphoscopeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'LymphoscopeError';
  }
}

export const badInput = (message: string, details?: Record<string, unknown>) =>
  new LymphoscopeError(ErrorCode.BAD_USER_INPUT, message, details);
export const notFound = (what: string, id: string) =>
  new LymphoscopeError(ErrorCode.NOT_FOUND, `${what} '${id}' was not found.`, { id });
export const conflict = (message: string, details?: Record<string, unknown>) =>
  new LymphoscopeError(ErrorCode.CONFLICT, message, details);
export const tooLarge = (message: string, details?: Record<string, unknown>) =>
  new LymphoscopeError(ErrorCode.PAYLOAD_TOO_LARGE, message, details);
export const unsupportedImage = (message: string, details?: Record<string, unknown>) =>
  new LymphoscopeError(ErrorCode.UNSUPPORTED_IMAGE, message, details);
export const rateLimited = (
  message: string,
  details: { limit: number; limitName: string; retryAfterSeconds: number },
) => new LymphoscopeError(ErrorCode.RATE_LIMITED, message, details);
export const unavailable = (message: string, details?: Record<string, unknown>) =>
  new LymphoscopeError(ErrorCode.UNAVAILABLE, message, details);

/** Thrown at the end of an exhaustive switch, so a new enum member is a compile error. */
export class UnreachableCaseError extends Error {
  constructor(value: never) {
    super(`Unreachable case: ${JSON.stringify(value)}`);
  }
}
