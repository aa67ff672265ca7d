import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { expiresAt, RETENTION_TAG, retentionRules } from '../../src/services/retention';

/**
 * The bucket's lifecycle rules in serverless.yml are what enforce retention on AWS; the local sweep
 * applies retentionRules(). They must be the same rules.
 */
const serverless = parseDocument(readFileSync(path.join(__dirname, '..', '..', 'serverless.yml'), 'utf8'), {
  // CloudFormation tags (!Ref, !GetAtt...) are not YAML's business here.
  customTags: [
    { tag: '!Ref', resolve: (value: string) => ({ Ref: value }) },
    { tag: '!GetAtt', resolve: (value: string) => ({ 'Fn::GetAtt': value }) },
    { tag: '!Sub', resolve: (value: string) => ({ 'Fn::Sub': value }) },
  ],
}).toJS() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface CfnRule {
  Id: string;
  Status: string;
  Prefix?: string;
  TagFilters?: Array<{ Key: string; Value: string }>;
  ExpirationInDays?: number | string;
}

it('serverless.yml holds exactly the retention rules the local sweep applies, with the stage parameters', () => {
  const params = serverless.params.default;
  const periods = {
    predictionPixelDays: params.predictionPixelDays,
    predictionRecordDays: params.predictionRecordDays,
  };
  expect(periods).toEqual({ predictionPixelDays: 30, predictionRecordDays: 365 });
  const cfn: CfnRule[] =
    serverless.resources.Resources.ArtifactsBucket.Properties.LifecycleConfiguration.Rules;
  const resolve = (days: number | string | undefined) =>
    typeof days === 'string' ? params[/^\$\{param:(\w+)\}$/.exec(days)![1]] : days;
  const expiring = cfn
    .filter((r) => r.ExpirationInDays !== undefined)
    .map((r) => {
      expect(r.Status).toBe('Enabled');
      expect(r.TagFilters?.every((t) => t.Key === RETENTION_TAG) ?? true).toBe(true);
      return {
        id: r.Id,
        prefix: r.Prefix,
        tag: r.TagFilters?.[0]?.Value ?? null,
        days: resolve(r.ExpirationInDays),
      };
    });
  expect(expiring.sort((a, b) => a.id.localeCompare(b.id))).toEqual(
    retentionRules(periods).sort((a, b) => a.id.localeCompare(b.id)),
  );
  // The app reads the same periods the rules use.
  const env = serverless.provider.environment;
  expect(env.LYMPHOSCOPE_PREDICTION_PIXEL_DAYS).toBe('${param:predictionPixelDays}');
  expect(env.LYMPHOSCOPE_PREDICTION_RECORD_DAYS).toBe('${param:predictionRecordDays}');
});

it('expires as S3 does: creation plus the days, rounded up to the next midnight UTC', () => {
  expect(expiresAt(new Date('2026-01-01T10:00:00Z'), 30).toISOString()).toBe('2026-02-01T00:00:00.000Z');
  expect(expiresAt(new Date('2026-01-01T00:00:00Z'), 1).toISOString()).toBe('2026-01-02T00:00:00.000Z');
  expect(expiresAt(new Date('2026-12-31T23:59:59Z'), 7).toISOString()).toBe('2027-01-08T00:00:00.000Z');
});
