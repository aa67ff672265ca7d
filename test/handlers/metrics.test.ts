import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createMetrics, MetricUnit } from '../../src/handlers/metrics';
import { handlerEnvironment, lambdaContext } from '../helpers/handler-env';
import type { TestS3 } from '../helpers/s3';

/** The JSON lines written to stdout while `run` runs. */
async function stdoutLines(run: () => unknown): Promise<Array<Record<string, unknown>>> {
  const written: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(chunk.toString());
    return true;
  });
  try {
    await run();
  } finally {
    spy.mockRestore();
  }
  return written
    .join('')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** What CloudWatch receives: Embedded Metric Format lines on stdout, only on Lambda. */
describe('createMetrics', () => {
  afterEach(() => {
    delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    delete process.env.AWS_LAMBDA_INITIALIZATION_TYPE;
  });

  it('is off outside Lambda: npm start and the tests run the same handlers without metrics', () => {
    delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    expect(createMetrics('local')).toBeNull();
  });

  it('writes one EMF line per publish in the Lymphoscope namespace, by service and stage', async () => {
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'lymphoscope-dev-graphql';
    const metrics = createMetrics('dev');
    expect(metrics).not.toBeNull();
    const lines = await stdoutLines(() => {
      metrics!.addMetric('requests', MetricUnit.Count, 1);
      metrics!.addMetric('latency', MetricUnit.Milliseconds, 12.5);
      metrics!.publishStoredMetrics();
    });
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toMatchObject({ service: 'lymphoscope', stage: 'dev', requests: 1, latency: 12.5 });
    const directive = (line._aws as { CloudWatchMetrics: Array<Record<string, unknown>> })
      .CloudWatchMetrics[0];
    expect(directive.Namespace).toBe('Lymphoscope');
    expect(directive.Dimensions).toEqual([['service', 'stage']]);
    expect(directive.Metrics).toEqual(
      expect.arrayContaining([
        { Name: 'requests', Unit: 'Count' },
        { Name: 'latency', Unit: 'Milliseconds' },
      ]),
    );
    // Published metrics are gone: the next invocation counts only its own.
    const next = await stdoutLines(() => {
      metrics!.addMetric('clientErrors', MetricUnit.Count, 1);
      metrics!.publishStoredMetrics();
    });
    expect(next).toHaveLength(1);
    expect(next[0]).toMatchObject({ clientErrors: 1, stage: 'dev' });
    expect(next[0]).not.toHaveProperty('requests');
  });

  it('counts a cold start once per container, however many invocations ask', async () => {
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'lymphoscope-dev-trainWorker';
    // What Lambda sets in a container started for a request (not for provisioned concurrency).
    process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';
    const metrics = createMetrics('dev')!;
    const lines = await stdoutLines(() => {
      for (let invocation = 0; invocation < 3; invocation++) {
        metrics.captureColdStartMetric();
        metrics.addMetric('trainingInvocations', MetricUnit.Count, 1);
        metrics.publishStoredMetrics();
      }
    });
    const coldStarts = lines.filter((line) => line.ColdStart === 1);
    expect(coldStarts).toHaveLength(1);
    expect(coldStarts[0]).toMatchObject({ service: 'lymphoscope', stage: 'dev' });
    expect(lines.filter((line) => line.trainingInvocations === 1)).toHaveLength(3);
  });
});

/** The API handler's own figures per invocation, as docs/DEPLOYMENT.md lists them for operators. */
describe('the graphql handler on Lambda', () => {
  let s3: TestS3;
  let handler: typeof import('../../src/handlers/graphql').handler;

  beforeAll(async () => {
    s3 = await handlerEnvironment({
      AWS_LAMBDA_FUNCTION_NAME: 'lymphoscope-test-graphql',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    });
    ({ handler } = await import('../../src/handlers/graphql'));
  });
  afterAll(() => s3?.stop());

  const event = (body: string, sourceIp: string) =>
    ({
      version: '2.0',
      routeKey: 'POST /graphql',
      rawPath: '/graphql',
      rawQueryString: '',
      headers: { 'content-type': 'application/json' },
      requestContext: {
        requestId: 'apigw-1',
        http: { method: 'POST', path: '/graphql', sourceIp, protocol: 'HTTP/1.1', userAgent: 'test' },
      },
      body,
      isBase64Encoded: false,
    }) as unknown as APIGatewayProxyEventV2;

  it('counts each request with its latency, a client error as such, and the cold start once', async () => {
    const health = JSON.stringify({ query: '{ health { status } }' });
    const lines = await stdoutLines(async () => {
      expect((await handler(event(health, '10.9.0.1'), lambdaContext('m-1'))).statusCode).toBe(200);
      expect((await handler(event('not json', '10.9.0.2'), lambdaContext('m-2'))).statusCode).toBe(400);
    });
    const requests = lines.filter((line) => line.requests === 1);
    expect(requests).toHaveLength(2);
    for (const line of requests) {
      expect(line).toMatchObject({ service: 'lymphoscope', stage: 'test' });
      expect(line.latency).toEqual(expect.any(Number));
      expect(line).not.toHaveProperty('serverErrors');
    }
    expect(requests[0]).not.toHaveProperty('clientErrors');
    expect(requests[1]).toMatchObject({ clientErrors: 1 });
    expect(lines.filter((line) => line.ColdStart === 1)).toHaveLength(1);
  });
});
