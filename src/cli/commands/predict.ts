import { readFile } from 'node:fs/promises';
import { decodeImage } from '../../ml/image/decode';
import { analyzeCell } from '../../ml/serving/predictor';
import { initRuntime } from '../../ml/runtime';
import type { Flags } from './flags';
import { DEMO_MODEL_DIR } from '../../config';
import { readModelDir } from './model-dir';
import { builtNetwork } from '../../ml/serving/tfjs-network';

/**
 * `lymphoscope predict`: per image, the call and what it means: label, p(ALL), the threshold it was
 * called against, and whether a person must review it and why.
 */
export async function predictCommand(flags: Flags, files: string[]): Promise<void> {
  if (files.length === 0) throw new Error('Usage: lymphoscope predict [--model <dir>] [--json] <image>...');
  await initRuntime();
  const { model, card } = await readModelDir(String(flags.model ?? DEMO_MODEL_DIR));
  const network = builtNetwork(model);
  const f = (v: number) => v.toFixed(2);
  const band =
    card.reviewLow < card.reviewHigh
      ? `outside the review band [${f(card.reviewLow)}, ${f(card.reviewHigh)})`
      : 'this model has an empty review band';
  try {
    for (const file of files) {
      const image = await decodeImage(await readFile(file));
      const analysis = await analyzeCell(network, card, image, { explain: false });
      const row = {
        file,
        label: analysis.isAll ? 'ALL' : 'NORMAL',
        probabilityAll: Number(analysis.probabilityAll.toFixed(4)),
        threshold: card.threshold,
        reviewLow: card.reviewLow,
        reviewHigh: card.reviewHigh,
        needsReview: analysis.needsReview,
        reviewReasons: analysis.reviewReasons,
        outOfDomainScore: analysis.outOfDomainScore,
        modelVersion: card.version,
        areaPx: analysis.morphology.areaPx,
        solidity: Number(analysis.morphology.solidity.toFixed(3)),
      };
      const review = row.needsReview
        ? `needs review: ${row.reviewReasons.join(', ')}`
        : `no review asked (${band})`;
      process.stdout.write(
        flags.json
          ? JSON.stringify(row) + '\n'
          : `${file}: ${row.label} p(ALL)=${f(row.probabilityAll)} (threshold ${f(row.threshold)}) - ${review}\n`,
      );
    }
  } finally {
    model.dispose();
  }
}
