import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';

/** REV's src/ under tmp/ (ignored), where its imports of node_modules resolve as this tree's do. */
export function checkout(rev: string): string {
  const root = path.join(__dirname, '..');
  const dir = path.join(root, 'tmp', `rev-${rev.replace(/[^\w.-]/g, '_')}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const archive = execFileSync('git', ['archive', rev, 'src'], { cwd: root, maxBuffer: 1 << 28 });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  return dir;
}

/**
 * What the analyzeCell of the tree at `root` takes first for `model`: a TfjsNetwork, or the model itself
 * in revisions before src/ml/serving/tfjs-network.ts.
 */
export async function networkArgument(root: string, model: unknown): Promise<unknown> {
  const module = path.join(root, 'src', 'ml', 'serving', 'tfjs-network');
  if (!existsSync(`${module}.ts`)) return model;
  const { builtNetwork } = (await import(module)) as { builtNetwork: (model: unknown) => unknown };
  return builtNetwork(model);
}
