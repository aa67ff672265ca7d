import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import {
  ApolloServerPluginLandingPageLocalDefault,
  ApolloServerPluginLandingPageProductionDefault,
} from '@apollo/server/plugin/landingPage/default';
import {
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginSchemaReportingDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ErrorCode, LymphoscopeError } from '../errors';
import { typeDefs } from '../generated/schema';
import type { Logger } from '../observability/log';
import type { RequestContext } from '../resolvers/context';
import { resolvers } from '../resolvers';
import type { Config } from '../config';
import { queryLimitsRule } from './limits';
import { executableSchema, type ResolverMap } from './schema';

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
 * original goes to the log, see operationLog). Stack traces never leave the server.
 */
export function formatError(options: { hideSuggestions: boolean } = { hideSuggestions: true }) {
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
    if (isTypedCode(formatted.extensions?.code, original)) {
      const { stacktrace: _drop, ...extensions } = formatted.extensions ?? {};
      // Apollo hides suggestions in validation errors, but a wrong value in the variables still says
      // 'Did you mean the enum value "ALL"?': the schema's names, to anyone who asks wrongly.
      const message = options.hideSuggestions
        ? formatted.message.replace(/\s*Did you mean [\s\S]*$/, '')
        : formatted.message;
      return { ...formatted, message, extensions };
    }
    // operationLog (below) logs the original with the request id, which this function is not given, and
    // requestIds adds that id to the answer.
    return {
      message: INTERNAL_MESSAGE,
      path: formatted.path,
      extensions: { code: ErrorCode.INTERNAL },
    };
  };
}

const INTERNAL_MESSAGE = 'Internal error. It has been logged; retry later or report the request id';

/** Whether a GraphQL error's code reaches the client as it is (see formatError). */
function isTypedCode(code: unknown, original: unknown): code is string {
  return (
    typeof code === 'string' &&
    (APOLLO_CODES.has(code) || code in ErrorCode) &&
    !(original instanceof Error && !(original instanceof GraphQLError))
  );
}

/** The code the client is sent for an error: ours from a LymphoscopeError, else as formatError decides. */
function clientCode(error: GraphQLError): string {
  const original = unwrapResolverError(error);
  if (original instanceof LymphoscopeError) return original.code;
  const code = error.extensions?.code;
  return isTypedCode(code, original) ? code : ErrorCode.INTERNAL;
}

/** Logs one line per operation with its outcome, each error's code, and its duration. */
const operationLog: ApolloServerPlugin<RequestContext> = {
  async requestDidStart({ contextValue }) {
    const started = performance.now();
    return {
      async didEncounterErrors({ errors }) {
        for (const error of errors) {
          if (clientCode(error) !== ErrorCode.INTERNAL) continue;
          contextValue.log.error('unexpected error', { error: unwrapResolverError(error), path: error.path });
        }
      },
      async willSendResponse({ operationName, errors, operation }) {
        contextValue.log.info('graphql', {
          operation: operationName ?? null,
          kind: operation?.operation ?? null,
          ms: Math.round(performance.now() - started),
          errors: errors?.map(clientCode) ?? [],
        });
      },
    };
  },
};

/**
 * Every answer carries its request id in an `x-request-id` header, and an INTERNAL error carries it in
 * `extensions.requestId` and its message: the id an operator looks up in the log.
 */
const requestIds: ApolloServerPlugin<RequestContext> = {
  async requestDidStart({ contextValue }) {
    return {
      async willSendResponse({ response }) {
        response.http.headers.set('x-request-id', contextValue.requestId);
        if (response.body.kind !== 'single') return;
        const errors = response.body.singleResult.errors;
        if (!errors?.some((e) => e.extensions?.code === ErrorCode.INTERNAL)) return;
        response.body.singleResult.errors = errors.map((e) =>
          e.extensions?.code === ErrorCode.INTERNAL
            ? {
                ...e,
                message: `${INTERNAL_MESSAGE} ${contextValue.requestId}.`,
                extensions: { ...e.extensions, requestId: contextValue.requestId },
              }
            : e,
        );
      },
    };
  },
};

export function createApolloServer(config: Config, log: Logger): ApolloServer<RequestContext> {
  return new ApolloServer<RequestContext>({
    schema: executableSchema(typeDefs, resolvers as ResolverMap),
    introspection: config.introspection,
    // "Did you mean ...?" hints would list the schema's fields to anyone who asks wrongly: hide them
    // wherever introspection is off.
    hideSchemaDetailsFromClientErrors: !config.introspection,
    includeStacktraceInErrorResponses: false,
    csrfPrevention: true,
    // The handler checks tokens and nesting before Apollo sees the document (checkDocumentShape); this
    // bounds the parser too wherever a document arrives by another way (executeOperation in tests).
    parseOptions: { maxTokens: config.limits.queryTokens },
    formatError: formatError({ hideSuggestions: !config.introspection }),
    // Apollo's own messages (a plugin that threw, a request it could not process) as JSON lines too.
    logger: {
      debug: (message: unknown) => log.debug('apollo', { detail: String(message) }),
      info: (message: unknown) => log.info('apollo', { detail: String(message) }),
      warn: (message: unknown) => log.warn('apollo', { detail: String(message) }),
      error: (message: unknown) => log.error('apollo', { detail: String(message) }),
    },
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
      requestIds,
      // Nothing about the API's use (operations, field timings, error messages) goes to Apollo's cloud,
      // whatever APOLLO_KEY says. It also keeps Apollo's trace protobuf (0.2 MB) out of the Lambda bundle's
      // cold start (src/handlers/apollo-reporting-unbundled.ts).
      ApolloServerPluginUsageReportingDisabled(),
      ApolloServerPluginSchemaReportingDisabled(),
      ApolloServerPluginInlineTraceDisabled(),
      config.stage === 'prod'
        ? ApolloServerPluginLandingPageProductionDefault({ footer: false })
        : ApolloServerPluginLandingPageLocalDefault({ footer: false, embed: true }),
    ],
  });
}
