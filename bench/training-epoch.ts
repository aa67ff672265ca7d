/**
 * `npx tsx bench/training-epoch.ts [batches] [--with-loop]`: one userEpoch (bench/training.ts: the default
 * recipe's warm epoch on seeded synthetic cells, augmentation and validation included), printed as JSON
 * with the load average; for `node --cpu-prof` and for before/after runs of the training step. With
 * --with-loop, then train() alone on onnxruntime (trainOnce), a second JSON line: `npm run bench` runs
 * both here, in a fresh process.
 */
import { loadavg } from 'node:os';
import { configureMl } from '../src/ml/settings';
import { loadMlSettings } from '../src/config';
import { initRuntime } from '../src/ml/runtime';
import { trainOnce, userEpoch } from './training';

async function main() {
  configureMl(loadMlSettings());
  await initRuntime();
  const batches = Number(process.argv[2] ?? 4);
  const load = () => loadavg().map((l) => Math.round(l * 100) / 100);
  console.log(JSON.stringify({ ...(await userEpoch(batches)), loadavg: load() }));
  if (process.argv.includes('--with-loop'))
    console.log(JSON.stringify({ ...(await trainOnce('onnxruntime', batches)), loadavg: load() }));
}

void main();
