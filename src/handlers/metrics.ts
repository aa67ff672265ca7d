import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

export { MetricUnit };

/**
 * CloudWatch metrics through Powertools' Metrics, in the Embedded Metric Format: one JSON line per
 * invocation on stdout that CloudWatch Logs turns into metrics (namespace `Lymphoscope`, dimensions
 * `service` and `stage`), with no API call and no extra IAM permission. Only on Lambda
 * (AWS_LAMBDA_FUNCTION_NAME is set): `npm start` and the tests run the same handlers and get null.
 */
export function createMetrics(stage: string): Metrics | null {
  if (!process.env.AWS_LAMBDA_FUNCTION_NAME) return null;
  return new Metrics({ namespace: 'Lymphoscope', serviceName: 'lymphoscope', defaultDimensions: { stage } });
}
