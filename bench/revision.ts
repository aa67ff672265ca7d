import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
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
