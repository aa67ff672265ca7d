import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { formatError } from '../../src/api/server';
import { ErrorCode, LymphoscopeError } from '../../src/errors';

/**
 * What a client may see of an error (src/api/server.ts, formatError): the whole server over HTTP is in
 * test/security/errors.test.ts and prod-stage.test.ts; here each kind of error, one by one.
 */
const INTERNAL = {
  message: 'Internal error. It has been logged; retry later or report the request id',
  extensions: { code: 'INTERNAL' },
};

/** As Apollo calls formatError: the formatted error, and the original wrapped in a GraphQLError. */
function format(
  original: unknown,
  formatted: GraphQLFormattedError,
  options?: { hideSuggestions: boolean },
): GraphQLFormattedError {
  const wrapped =
    original instanceof GraphQLError
      ? original
      : new GraphQLError(formatted.message, { originalError: original as Error, path: ['dataset'] });
  return formatError(options)(formatted, wrapped);
}

describe('formatError', () => {
  it('keeps our errors whole: code, message and details, at their path', () => {
    const error = new LymphoscopeError(ErrorCode.PAYLOAD_TOO_LARGE, 'The image is 9 MB; the limit is 2 MB.', {
      limit: 2_000_000,
    });
    expect(
      format(error, {
        message: 'wrapped',
        path: ['addImage'],
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      }),
    ).toEqual({
      message: 'The image is 9 MB; the limit is 2 MB.',
      path: ['addImage'],
      locations: undefined,
      extensions: { code: 'PAYLOAD_TOO_LARGE', limit: 2_000_000 },
    });
  });

  it("keeps Apollo's request errors, without their stack trace", () => {
    const parse = new GraphQLError('Syntax Error: Expected Name, found <EOF>.', {
      extensions: { code: 'GRAPHQL_PARSE_FAILED' },
    });
    expect(
      format(parse, {
        message: parse.message,
        locations: [{ line: 1, column: 3 }],
        extensions: { code: 'GRAPHQL_PARSE_FAILED', stacktrace: ['GraphQLError: ...', '    at parse'] },
      }),
    ).toEqual({
      message: parse.message,
      locations: [{ line: 1, column: 3 }],
      extensions: { code: 'GRAPHQL_PARSE_FAILED' },
    });
  });

  it('hides "Did you mean" hints unless asked to keep them (introspection on)', () => {
    const message =
      'Variable "$l" got invalid value "NORMA"; Value "NORMA" does not exist in "CellLabel" enum. Did you mean the enum value "NORMAL"?';
    const error = new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
    const formatted = { message, extensions: { code: 'BAD_USER_INPUT' } };
    expect(format(error, formatted).message).toBe(
      'Variable "$l" got invalid value "NORMA"; Value "NORMA" does not exist in "CellLabel" enum.',
    );
    expect(format(error, formatted, { hideSuggestions: false }).message).toBe(message);
  });

  it('turns anything else into INTERNAL with no details: a thrown Error, or a code it does not know', () => {
    const crash = new TypeError("Cannot read properties of undefined (reading 'labels')");
    expect(
      format(crash, {
        message: crash.message,
        path: ['dataset'],
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      }),
    ).toEqual({ ...INTERNAL, path: ['dataset'] });
    // A plain Error that happens to carry a typed-looking code is still a crash, not a client error.
    const lookalike = Object.assign(new Error('secret detail'), { extensions: { code: 'BAD_USER_INPUT' } });
    expect(
      format(lookalike, {
        message: 'secret detail',
        path: ['dataset'],
        extensions: { code: 'BAD_USER_INPUT' },
      }),
    ).toEqual({ ...INTERNAL, path: ['dataset'] });
    const madeUp = new GraphQLError('internal path /var/task', { extensions: { code: 'SOMETHING_ELSE' } });
    expect(format(madeUp, { message: madeUp.message, extensions: { code: 'SOMETHING_ELSE' } })).toEqual({
      ...INTERNAL,
      path: undefined,
    });
  });
});
