/**
 * Prints the figures of docs/ML.md, "Out-of-domain detection": false alarms on cells of held-out
 * subjects and detection per kind of shifted or foreign image, measured on the 63 real C-NMC cells
 * of data/cnmc-sample (subject-grouped 5-fold, thresholds fitted on inner out-of-fold scores) and
 * the images made from them in code (src/ml/image/foreign.ts). Takes a few minutes on one core.
 *
 *   npx tsx scripts/out-of-domain-figures.ts [falseAlarmRate=0.05]
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../src/ml/image/decode';
import { outOfDomainImages, OUT_OF_DOMAIN_KINDS } from '../src/ml/image/foreign';
import type { RgbImage } from '../src/ml/image/types';
import { domainFeatures } from '../src/ml/features/out-of-domain';
import { evaluateDomainDetection } from '../src/ml/evaluation/out-of-domain-evaluation';
import { parseCnmcFilename } from '../src/ml/data/splits';

const SAMPLE = path.join(__dirname, '..', 'data', 'cnmc-sample');

async function jpeg(img: RgbImage, quality: number): Promise<RgbImage> {
  const raw = { width: img.width, height: img.height, channels: 3 as const };
  return decodeImage(await sharp(Buffer.from(img.data), { raw }).jpeg({ quality }).toBuffer());
}

async function main() {
  const falseAlarmRate = Number(process.argv[2] ?? 0.05);
  const files = ['all', 'hem'].flatMap((folder) =>
    readdirSync(path.join(SAMPLE, folder))
      .filter((name) => name.endsWith('.bmp'))
      .sort()
      .map((name) => path.join(SAMPLE, folder, name)),
  );
  const images = await Promise.all(files.map(async (file) => decodeImage(readFileSync(file))));
  const cells = files.map((file, i) => {
    const name = parseCnmcFilename(file)!;
    return {
      id: path.basename(file),
      label: (name.label === 'all' ? 1 : 0) as 0 | 1,
      subjectId: name.subjectId,
      features: domainFeatures(images[i]),
    };
  });
  const started = performance.now();
  for (let round = 0; round < 5; round++) images.forEach((image) => domainFeatures(image));
  const msPerImage = (performance.now() - started) / (5 * images.length);

  // Kinds that must be flagged, and in-domain cells re-encoded as a partner might send them (must not).
  const shifted: Record<string, Float64Array[]> = {};
  for (const kind of [...OUT_OF_DOMAIN_KINDS, 'jpeg-90 (in domain)']) shifted[kind] = [];
  for (let i = 0; i < images.length; i++) {
    const made = await outOfDomainImages(images, i);
    for (const kind of OUT_OF_DOMAIN_KINDS) shifted[kind].push(domainFeatures(made[kind]));
    shifted['jpeg-90 (in domain)'].push(domainFeatures(await jpeg(images[i], 90)));
  }
  const result = evaluateDomainDetection(cells, shifted, {
    k: 5,
    innerK: 4,
    seeds: [1, 2, 3],
    falseAlarmRate,
  });
  const pct = (c: { flagged: number; total: number }) =>
    `${((100 * c.flagged) / c.total).toFixed(1)}% (${c.flagged}/${c.total})`;
  console.log(
    `Target false-alarm rate ${falseAlarmRate}; features ${msPerImage.toFixed(1)} ms per 450x450 image.`,
  );
  console.log(`| Images | Flagged OUT_OF_DOMAIN |\n|---|---|`);
  console.log(`| held-out C-NMC cells (in domain) | ${pct(result.inDomain)} |`);
  for (const [kind, count] of Object.entries(result.detected)) console.log(`| ${kind} | ${pct(count)} |`);
  const t = result.thresholds;
  console.log(
    `Thresholds: ${Math.min(...t).toFixed(2)} to ${Math.max(...t).toFixed(2)} over ${t.length} folds.`,
  );
}

void main();
