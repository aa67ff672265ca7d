import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import {
  ApolloServerPluginLandingPageLocalDefault,
  ApolloServerPluginLandingPageProductionDefault,
} from '@apollo/server/plugin/landingPage/default';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ErrorCode, LymphoscopeError } from '../errors';
import { typeDefs } from '../generated/schema';
import type { Logger } from '../observability/log';
import type { RequestContext } from '../resolvers/context';
import { resolvers } from '../resolvers';
import type { Config } from '../config';
import { queryLimitsRule } from './limits';

/** Apollo's own codes a client may also see (parse/validation/variable errors); all are typed. */
const APOLLO_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
  'BAD_REQUEST',
]);

/**
 * Turns every error into what a client may see: our LymphoscopeErrors keep their code, message and
 * details; Apollo's request errors keep theirs; anything else becomes INTERNAL with no details (the
 * original goes to the log). Stack traces never leave the server.
 */
export function formatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    if (original instanceof LymphoscopeError) {
      return {
        message: original.message,
        path: formatted.path,
        locations: formatted.locations,
        extensions: { code: original.code, ...(original.details ?? {}) },
      };
    }
    const code = formatted.extensions?.code;
    if (
      typeof code === 'string' &&
      (APOLLO_CODES.has(code) || code in ErrorCode) &&
      !(original instanceof Error && !(original instanceof GraphQLError))
    ) {
      const { stacktrace: _drop, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    log.error('unexpected error', { error: original, path: formatted.path });
    return {
      message: 'Internal error. It has been logged; retry later or report the request id.',
      path: formatted.path,
      extensions: { code: ErrorCode.INTERNAL },
    };
  };
}

/** Logs one line per operation with its outcome and duration. */
const operationLog: ApolloServerPlugin<RequestContext> = {
  async requestDidStart({ contextValue }) {
    const started = performance.now();
    return {
      async willSendResponse({ operationName, errors, operation }) {
        contextValue.log.info('graphql', {
          operation: operationName ?? null,
          kind: operation?.operation ?? null,
          ms: Math.round(performance.now() - started),
          errors: errors?.map((e) => (e.extensions?.code as string) ?? 'INTERNAL') ?? [],
        });
      },
    };
  },
};

export function createApolloServer(config: Config, log: Logger): ApolloServer<RequestContext> {
  return new ApolloServer<RequestContext>({
    typeDefs,
    resolvers: resolvers as never,
    introspection: config.introspection,
    // "Did you mean ...?" hints would list the schema's fields to anyone who asks wrongly: hide them
    // wherever introspection is off.
    hideSchemaDetailsFromClientErrors: !config.introspection,
    includeStacktraceInErrorResponses: false,
    csrfPrevention: true,
    // The handler checks tokens and nesting before Apollo sees the document (checkDocumentShape); this
    // bounds the parser too wherever a document arrives by another way (executeOperation in tests).
    parseOptions: { maxTokens: config.limits.queryTokens },
    formatError: formatError(log),
    validationRules: [
      queryLimitsRule({
        depth: config.limits.queryDepth,
        aliases: config.limits.aliases,
        cost: config.limits.queryCost,
        defaultPage: 20,
        maxPage: config.limits.pageSize,
      }),
    ],
    plugins: [
      operationLog,
      config.stage === 'prod'
        ? ApolloServerPluginLandingPageProductionDefault({ footer: false })
        : ApolloServerPluginLandingPageLocalDefault({ footer: false, embed: true }),
    ],
  });
}
