import { mkdir, rmdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const LOCK = join(resolve(__dirname, '../..'), '.serverless-packaging.lock');
/** A lock older than this was left by a killed run: packaging never takes that long. */
const STALE_MS = 10 * 60_000;

/**
 * Runs `work` while no other test file in this checkout is packaging: `serverless package` clears and
 * rewrites .serverless/ (and serverless-esbuild's .esbuild/) even with --package elsewhere, so a test
 * reading zips there while another packages could find them gone. An atomic mkdir is the lock.
 */
export async function whilePackagingAlone<T>(work: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(LOCK).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > STALE_MS) await rmdir(LOCK).catch(() => undefined);
      else await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await work();
  } finally {
    await rmdir(LOCK).catch(() => undefined);
  }
}
