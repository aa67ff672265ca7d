import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';

/** The Node major of the functions' runtime in serverless.yml (nodejs22.x). */
export const LAMBDA_NODE_MAJOR = 22;

/**
 * A Node binary of Lambda's major: LYMPHOSCOPE_LAMBDA_NODE (.ci/run sets it), else the npm registry's
 * node@22 package through npx (cached after the first run; no internet beyond the registry). Used by the
 * packaging test and the benches that run code as Lambda would.
 */
export async function lambdaNode(): Promise<string> {
  if (process.env.LYMPHOSCOPE_LAMBDA_NODE) return process.env.LYMPHOSCOPE_LAMBDA_NODE;
  const { stdout } = await promisify(execFile)(
    'npx',
    ['-y', '-p', `node@${LAMBDA_NODE_MAJOR}`, '-c', 'command -v node'],
    { cwd: tmpdir(), timeout: 300_000 },
  );
  return stdout.trim();
}
