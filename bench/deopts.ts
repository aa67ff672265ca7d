/**
 * `npx tsx bench/deopts.ts [passes]`: how often V8 sent the analysis' optimised code back to the
 * interpreter (the "bailout" lines of `node --trace-deopt`), per function, while bench/analyze-profile.ts
 * analyses the 63 real C-NMC cells of data/cnmc-sample `passes` times (default 2) with the demo model on
 * onnxruntime: under this Node and under Node 22, Lambda's runtime (LYMPHOSCOPE_LAMBDA_NODE, else the npm
 * registry's node@22). A function that bails out on most of its calls runs much of every call unoptimised
 * (docs/PERFORMANCE.md, "The analysis of one cell, third pass"): read the largest counts against the
 * number of analyses. Counts vary from run to run, as V8 compiles on a background thread.
 */
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { lambdaNode } from '../test/helpers/lambda-node';

const ROOT = path.join(__dirname, '..');
const CELLS = 63;

/** The bailouts of one child, by function: how many, and the most frequent reason. */
function bailouts(node: string, passes: number) {
  return new Promise<{ version: string; byFunction: Map<string, Map<string, number>> }>((resolve, reject) => {
    // process.execArgv carries tsx's loader, which the child needs to run the TypeScript bench.
    const args = [...process.execArgv, '--trace-deopt', 'bench/analyze-profile.ts', String(passes)];
    const child = spawn(node, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const byFunction = new Map<string, Map<string, number>>();
    let pending = '';
    let stderr = '';
    const scan = (text: string) => {
      const lines = (pending + text).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.includes('bailout')) continue;
        const name = /deoptimizing \S+ <JSFunction ([^ >]*)/.exec(line)?.[1] || '(anonymous)';
        const reason = /reason: ([^)]*)\)/.exec(line)?.[1] ?? '?';
        const reasons = byFunction.get(name) ?? new Map<string, number>();
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        byFunction.set(name, reasons);
      }
    };
    child.stdout.on('data', (chunk: Buffer) => scan(chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${node} exited ${code}: ${stderr.slice(-2000)}`));
      promisify(execFile)(node, ['--version']).then(
        ({ stdout }) => resolve({ version: stdout.trim(), byFunction }),
        reject,
      );
    });
  });
}

async function main() {
  const passes = Number(process.argv[2] ?? 2);
  if (!Number.isInteger(passes) || passes < 1)
    throw new Error('usage: npx tsx bench/deopts.ts [passes >= 1]');
  for (const node of [process.execPath, await lambdaNode()]) {
    const { version, byFunction } = await bailouts(node, passes);
    const rows = [...byFunction]
      .map(([name, reasons]) => {
        const [reason] = [...reasons].sort((a, b) => b[1] - a[1])[0];
        return { function: name, bailouts: [...reasons.values()].reduce((a, b) => a + b, 0), reason };
      })
      .sort((a, b) => b.bailouts - a.bailouts)
      .slice(0, 10);
    console.log(
      `Node ${version}: bailouts over ${passes * CELLS + 1} analyses (${CELLS} real C-NMC cells x ${passes}, and one before), the 10 most:`,
    );
    console.table(rows);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
