/**
 * `npx tsx bench/training-epoch.ts [batches]`: one userEpoch (bench/training.ts: the default recipe's
 * warm epoch on seeded synthetic cells, augmentation and validation included), printed as JSON with the
 * load average; for `node --cpu-prof` and for before/after runs of the training step.
 */
import { loadavg } from 'node:os';
import { configureMl } from '../src/ml/settings';
import { loadMlSettings } from '../src/config';
import { initRuntime } from '../src/ml/runtime';
import { userEpoch } from './training';

async function main() {
  configureMl(loadMlSettings());
  await initRuntime();
  const row = await userEpoch(Number(process.argv[2] ?? 4));
  console.log(JSON.stringify({ ...row, loadavg: loadavg().map((l) => Math.round(l * 100) / 100) }));
}

void main();
