import type { ApolloServer } from '@apollo/server';
import { createApolloServer } from '../../src/api/server';
import { loadConfig } from '../../src/config';
import type { ScoringWorkerEvent } from '../../src/dispatch/scoring-dispatcher';
import type { TrainWorkerEvent } from '../../src/dispatch/job-dispatcher';
import { createRequestContext, type RequestContext } from '../../src/resolvers/context';
import { createServices, type Services } from '../../src/services';
import { ANONYMOUS_ADMIN, type Role } from '../../src/services/auth';
import { startTestS3, type TestS3 } from './s3';
import { modelArtifacts } from '../../src/services/model-artifacts';

// Answers are checked field by field by the tests; the schema checks their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Data = Record<string, any>;

export interface OperationResult {
  data: Data | null;
  errors: Array<{ message: string; extensions?: Record<string, unknown> }>;
  /** The first error's extensions.code, or null when there is none. */
  code: string | null;
}

export interface ResolverHarness {
  s3: TestS3;
  services: Services;
  /** A key of each role, created through AuthService as createApiKey does. */
  keys: Record<Role, string>;
  /** Workers the resolvers asked to start (recorded: no worker runs in these tests). */
  dispatched: { training: TrainWorkerEvent[]; scoring: ScoringWorkerEvent[] };
  /** Runs one operation through the real Apollo server (schema, limits rule, error formatting) as `key`. */
  run(key: string | null, query: string, variables?: Record<string, unknown>): Promise<OperationResult>;
  stop(): Promise<void>;
}

/**
 * The API below its HTTP handler: the same Apollo server, resolvers, services and request context, over a
 * real local S3, driven with executeOperation. The resolvers' own checks (role, arguments) are what
 * these tests look at; the HTTP path is covered by test/security and test/e2e.
 */
export async function startResolverHarness(env: Record<string, string> = {}): Promise<ResolverHarness> {
  const s3 = await startTestS3();
  const config = loadConfig({
    LYMPHOSCOPE_STAGE: 'test',
    LYMPHOSCOPE_BUCKET: s3.bucket,
    LYMPHOSCOPE_LOG_LEVEL: 'silent',
    ...env,
  });
  const dispatched: ResolverHarness['dispatched'] = { training: [], scoring: [] };
  const services = createServices(config, {
    store: s3.store,
    dispatcher: { dispatch: async (event) => void dispatched.training.push(event) },
    scoringDispatcher: { dispatch: async (event) => void dispatched.scoring.push(event) },
    registration: modelArtifacts,
  });
  const server: ApolloServer<RequestContext> = createApolloServer(config, services.log);
  await server.start();
  const keys = {} as Record<Role, string>;
  for (const role of ['PARTNER', 'SCIENTIST', 'ADMIN'] as const) {
    keys[role] = (await services.auth.create(ANONYMOUS_ADMIN, `${role.toLowerCase()} key`, role)).secret;
  }
  let requests = 0;
  return {
    s3,
    services,
    keys,
    dispatched,
    async run(key, query, variables) {
      const response = await server.executeOperation(
        { query, variables },
        { contextValue: createRequestContext(services, key, `test-${++requests}`) },
      );
      if (response.body.kind !== 'single') throw new Error('expected a single result');
      const { data, errors } = response.body.singleResult;
      const list = (errors ?? []) as OperationResult['errors'];
      return {
        data: (data as Data) ?? null,
        errors: list,
        code: (list[0]?.extensions?.code as string) ?? null,
      };
    },
    async stop() {
      await server.stop();
      await s3.stop();
    },
  };
}
