import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

/**
 * docs/ARCHITECTURE.md: test/x/y.test.ts tests src/x/y.ts. For the layers a request goes through, every
 * module has its test file, or is listed here with where its behaviour is tested instead.
 */
const ROOT = path.join(__dirname, '..', '..');
const LAYERS = ['handlers', 'resolvers', 'services', 'dispatch', 'api'];
const TESTED_ELSEWHERE: Record<string, string> = {
  'services/caller.ts': 'types only',
  'resolvers/connection.ts': 'one object literal, exercised by every paginated resolver test',
  'services/retention.ts': 'test/services/retention-rules.test.ts',
  'services/training-finish.ts': 'test/e2e/training-folds.test.ts (two finishers, one version)',
  'dispatch/job-dispatcher.ts': 'test/dispatch/lambda-invoker.test.ts',
  'dispatch/scoring-dispatcher.ts': 'test/dispatch/lambda-invoker.test.ts',
};

describe('tests mirror src', () => {
  it('give each module of handlers, resolvers, services, dispatch and api a test named after it', () => {
    const modules = LAYERS.flatMap((layer) =>
      readdirSync(path.join(ROOT, 'src', layer))
        .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
        .map((file) => `${layer}/${file}`),
    );
    expect(modules.length).toBeGreaterThan(40);
    const untested = modules.filter(
      (module) =>
        !(module in TESTED_ELSEWHERE) &&
        !existsSync(path.join(ROOT, 'test', module.replace(/\.ts$/, '.test.ts'))),
    );
    expect(untested).toEqual([]);
  });
});
