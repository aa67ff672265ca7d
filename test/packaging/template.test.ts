import { execFile } from 'child_process';
import { mkdtemp, readFile, rm } from 'fs/promises';
import { tmpdir } from 'os';
import { join, resolve } from 'path';
import { promisify } from 'util';
import { whilePackagingAlone } from '../helpers/packaging-lock';

/**
 * The CloudFormation template `serverless package --stage prod` writes, checked for the invariants
 * cfn-lint and checkov would be asked about (neither installs here): the runtime, one least-privilege
 * role per function, the buckets' policies, throttling, access logs, tracing, the workers' on-failure
 * queues and their alarms, log retention and CORS. A setting dropped from serverless.yml, or a framework
 * upgrade that stops honouring one, fails here.
 */

const run = promisify(execFile);
const root = resolve(__dirname, '../..');
const PROD_ORIGIN = 'https://console.example.org';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Json;
}

const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
/** The text of a !Join, or the value itself, for comparing ARNs built in the template. */
const joined = (value: unknown): string => {
  if (typeof value === 'string') return value;
  const join = (value as Json)?.['Fn::Join'];
  if (join)
    return (join[1] as unknown[])
      .map((part) => (typeof part === 'string' ? part : JSON.stringify(part)))
      .join(join[0]);
  return JSON.stringify(value);
};

async function packageStage(stage: string, env: NodeJS.ProcessEnv, out: string, params: string[] = []) {
  return whilePackagingAlone(() =>
    run(
      'npx',
      ['serverless', 'package', '--stage', stage, '--package', out, ...params.map((p) => `--param=${p}`)],
      {
        cwd: root,
        env,
        timeout: 300_000,
        maxBuffer: 16 * 1024 * 1024,
      },
    ),
  );
}

describe('the production CloudFormation template', () => {
  let out: string;
  let template: Json;
  let resources: Record<string, Json>;
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lymphoscope-template-'));
    await packageStage('prod', { ...process.env, LYMPHOSCOPE_CORS_ORIGIN: PROD_ORIGIN }, out);
    template = JSON.parse(await readFile(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
    resources = template.Resources;
  }, 360_000);
  afterAll(() => rm(out, { recursive: true, force: true }));

  it('runs every function on nodejs22.x with X-Ray tracing, loading no source map', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.map(([name]) => name).sort()).toEqual([
      'GraphqlLambdaFunction',
      'ScoreWorkerLambdaFunction',
      'TrainWorkerLambdaFunction',
    ]);
    for (const [, fn] of functions) {
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(fn.Properties.Environment.Variables.NODE_OPTIONS ?? '').not.toContain('source-maps');
    }
  });

  it('gives each function its own role, allowing only what its code does', () => {
    expect(resources.IamRoleLambdaExecution).toBeUndefined();
    const roleOf = (fn: string) => resources[fn].Properties.Role['Fn::GetAtt'][0] as string;
    const api = roleOf('GraphqlLambdaFunction');
    const worker = roleOf('TrainWorkerLambdaFunction');
    const scorer = roleOf('ScoreWorkerLambdaFunction');
    expect(new Set([api, worker, scorer]).size).toBe(3);
    const statements = (role: string): Statement[] =>
      resources[role].Properties.Policies.flatMap((p: Json) => p.PolicyDocument.Statement);
    const invokable = (role: string) =>
      statements(role)
        .filter((s) => actions(s).includes('lambda:InvokeFunction'))
        .map((s) => joined(s.Resource).replace(/.*:function:lymphoscope-prod-/, ''))
        .sort();

    for (const [role, fn] of [
      [api, 'graphql'],
      [worker, 'trainWorker'],
      [scorer, 'scoreWorker'],
    ]) {
      expect(resources[role].Properties.AssumeRolePolicyDocument.Statement).toEqual([
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ]);
      expect(resources[role].Properties.ManagedPolicyArns).toBeUndefined();
      for (const s of statements(role)) {
        expect(s.Effect).toBe('Allow');
        for (const action of actions(s)) expect(action).not.toMatch(/\*/);
        // Only X-Ray, which has no resource-level permissions, may name every resource.
        if (s.Resource === '*') expect(actions(s).every((a) => a.startsWith('xray:'))).toBe(true);
        if (actions(s).some((a) => a.startsWith('logs:')))
          expect(joined(s.Resource)).toContain(`log-group:/aws/lambda/lymphoscope-prod-${fn}:`);
        if (actions(s).some((a) => a.startsWith('s3:')))
          expect(JSON.stringify(s.Resource)).toContain('ArtifactsBucket');
        if (actions(s).includes('lambda:InvokeFunction'))
          expect(joined(s.Resource)).toMatch(/:function:lymphoscope-prod-(trainWorker|scoreWorker)$/);
      }
    }
    // The API starts both workers; each worker continues only itself.
    expect(invokable(api)).toEqual(['scoreWorker', 'trainWorker']);
    expect(invokable(worker)).toEqual(['trainWorker']);
    expect(invokable(scorer)).toEqual(['scoreWorker']);

    // Exactly the S3 actions each function's code calls (src/storage/s3-object-store.ts). The API
    // tags prediction images as it writes them (PutObject with Tagging needs s3:PutObjectTagging),
    // reads tags and lists and deletes every version for the retention sweep and patient-data
    // deletion (docs/DATA.md); the workers only read, write and list.
    const s3 = (role: string) =>
      [...new Set(statements(role).flatMap(actions))].filter((a) => a.startsWith('s3:')).sort();
    expect(s3(api)).toEqual([
      's3:DeleteObject',
      's3:DeleteObjectVersion',
      's3:GetObject',
      's3:GetObjectTagging',
      's3:ListBucket',
      's3:ListBucketVersions',
      's3:PutObject',
      's3:PutObjectTagging',
    ]);
    for (const role of [worker, scorer])
      expect(s3(role)).toEqual(['s3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject']);
    // Bucket-level actions on the bucket, object-level ones on its objects.
    for (const role of [api, worker, scorer])
      for (const s of statements(role).filter((s) => actions(s).some((a) => a.startsWith('s3:')))) {
        const onBucket = actions(s).every((a) => a === 's3:ListBucket' || a === 's3:ListBucketVersions');
        expect(s.Resource).toEqual(
          onBucket
            ? { 'Fn::GetAtt': ['ArtifactsBucket', 'Arn'] }
            : { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['ArtifactsBucket', 'Arn'] }, '/*']] },
        );
      }

    const all = (role: string) => statements(role).flatMap(actions).sort();
    expect(all(api)).not.toContain('sqs:SendMessage');
    for (const [role, queue] of [
      [worker, 'TrainWorkerFailureQueue'],
      [scorer, 'ScoreWorkerFailureQueue'],
    ]) {
      const sends = statements(role).filter((s) => actions(s).includes('sqs:SendMessage'));
      expect(sends.map((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [queue, 'Arn'] }]);
    }
  });

  it('keeps the artifacts bucket private, encrypted, versioned, retained, and TLS-only', () => {
    const bucket = resources.ArtifactsBucket;
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.Properties.BucketEncryption).toBeDefined();
    const policy = resources.ArtifactsBucketPolicy.Properties.PolicyDocument.Statement as Statement[];
    const tls = policy.find((s) => s.Condition?.Bool?.['aws:SecureTransport'] === 'false')!;
    expect(tls).toMatchObject({ Effect: 'Deny', Principal: '*', Action: 's3:*' });
    expect(JSON.stringify(tls.Resource)).toContain('/*');
  });

  it("keeps the framework's deployment bucket private, versioned, encrypted and TLS-only", () => {
    const bucket = resources.ServerlessDeploymentBucket.Properties;
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.BucketEncryption).toBeDefined();
    const policy = resources.ServerlessDeploymentBucketPolicy.Properties.PolicyDocument
      .Statement as Statement[];
    expect(
      policy.some((s) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === false),
    ).toBe(true);
  });

  it('throttles the HTTP API and writes its access log', () => {
    const stage = resources.HttpApiStage.Properties;
    expect(stage.DefaultRouteSettings.ThrottlingRateLimit).toBeGreaterThan(0);
    expect(stage.DefaultRouteSettings.ThrottlingBurstLimit).toBeGreaterThan(0);
    expect(stage.AccessLogSettings.DestinationArn).toEqual({ 'Fn::GetAtt': ['HttpApiLogGroup', 'Arn'] });
    expect(JSON.parse(stage.AccessLogSettings.Format)).toMatchObject({ requestId: '$context.requestId' });
  });

  it('sends failed worker invocations to SQS queues that alarm, and reserves training its concurrency', () => {
    const configs = ofType('AWS::Lambda::EventInvokeConfig').map(([, c]) => c.Properties);
    expect(configs.map((c) => c.FunctionName.Ref).sort()).toEqual([
      'ScoreWorkerLambdaFunction',
      'TrainWorkerLambdaFunction',
    ]);
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    for (const worker of ['TrainWorker', 'ScoreWorker']) {
      const queue = `${worker}FailureQueue`;
      expect(configs.find((c) => c.FunctionName.Ref === `${worker}LambdaFunction`)).toMatchObject({
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
      });
      expect(resources[queue].Type).toBe('AWS::SQS::Queue');
      expect(resources[queue].Properties.SqsManagedSseEnabled).toBe(true);
      const alarm = alarms.find((a) => JSON.stringify(a.Dimensions).includes(queue))!;
      expect(alarm).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      expect(alarm.AlarmActions).toEqual([{ Ref: 'AlarmTopic' }]);
    }
    // Both workers are capped by a reservation, so neither training nor bulk scoring can take the
    // concurrency the API needs; the API itself draws on the unreserved pool.
    for (const worker of ['TrainWorkerLambdaFunction', 'ScoreWorkerLambdaFunction']) {
      expect(resources[worker].Properties.ReservedConcurrentExecutions).toBeGreaterThanOrEqual(1);
    }
    expect(resources.GraphqlLambdaFunction.Properties.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('keeps a year of logs in prod, for every function and the access log', () => {
    const groups = ofType('AWS::Logs::LogGroup');
    expect(groups.map(([name]) => name).sort()).toEqual([
      'GraphqlLogGroup',
      'HttpApiLogGroup',
      'ScoreWorkerLogGroup',
      'TrainWorkerLogGroup',
    ]);
    for (const [, group] of groups) expect(group.Properties.RetentionInDays).toBe(365);
  });

  it('allows only the named browser origin, on the API and the bucket', () => {
    expect(resources.HttpApi.Properties.CorsConfiguration.AllowOrigins).toEqual([PROD_ORIGIN]);
    const rules = resources.ArtifactsBucket.Properties.CorsConfiguration.CorsRules as Json[];
    for (const rule of rules) expect(rule.AllowedOrigins).toEqual([PROD_ORIGIN]);
  });

  it('names the bucket and the API URL in its outputs, for bootstrap', () => {
    expect(Object.keys(template.Outputs)).toEqual(
      expect.arrayContaining(['ArtifactsBucketName', 'HttpApiUrl']),
    );
  });

  it('keeps API instances warm only when apiProvisionedConcurrency asks, the HTTP API then calling them', async () => {
    const integrations = (r: Record<string, Json>) =>
      Object.values(r)
        .filter((x) => x.Type === 'AWS::ApiGatewayV2::Integration')
        .map((x) => joined(x.Properties.IntegrationUri));
    expect(ofType('AWS::Lambda::Alias')).toEqual([]);
    expect(integrations(resources)).toEqual([
      JSON.stringify({ 'Fn::GetAtt': ['GraphqlLambdaFunction', 'Arn'] }),
    ]);

    const warm = join(out, 'warm');
    await packageStage('prod', { ...process.env, LYMPHOSCOPE_CORS_ORIGIN: PROD_ORIGIN }, warm, [
      'apiProvisionedConcurrency=2',
    ]);
    const warmResources: Record<string, Json> = JSON.parse(
      await readFile(join(warm, 'cloudformation-template-update-stack.json'), 'utf8'),
    ).Resources;
    const aliases = Object.values(warmResources).filter((x) => x.Type === 'AWS::Lambda::Alias');
    expect(aliases).toHaveLength(1);
    expect(aliases[0].Properties).toMatchObject({
      FunctionName: { Ref: 'GraphqlLambdaFunction' },
      ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 },
    });
    expect(integrations(warmResources)).toEqual([
      expect.stringMatching(new RegExp(`GraphqlLambdaFunction.*:${aliases[0].Properties.Name}$`)),
    ]);
  }, 300_000);

  it('refuses to package prod without a CORS origin', async () => {
    const env = { ...process.env };
    delete env.LYMPHOSCOPE_CORS_ORIGIN;
    const refused = await packageStage('prod', env, join(out, 'refused')).then(
      () => null,
      (error: { stderr?: string; stdout?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
    );
    expect(refused).toContain('Stage prod needs its browser origin: LYMPHOSCOPE_CORS_ORIGIN=');
  }, 300_000);
});
