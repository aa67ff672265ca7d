import { spawn } from 'node:child_process';

/**
 * Runs `node ...args` (process.execPath: the same Node, and with process.execArgv the same loaders) and
 * answers the JSON objects it printed, one per stdout line starting with '{', in order. Rejects if it
 * exits non-zero or prints none, with the end of its stderr: a benchmark's child that failed says why.
 */
export function jsonLinesOfChild(name: string, args: string[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const lines = stdout.split('\n').filter((line) => line.startsWith('{'));
      if (code !== 0 || lines.length === 0) {
        reject(new Error(`${name} exited ${code}: ${stderr.slice(-2000)}`));
        return;
      }
      resolve(lines.map((line) => JSON.parse(line) as unknown));
    });
  });
}
