import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sampleImages } from '../helpers/sample';

const run = promisify(execFile);
const BIN = path.join(__dirname, '..', '..', 'bin', 'lymphoscope.js');
const DEMO = path.join(__dirname, '..', '..', 'data', 'demo-model');
const cli = (...args: string[]) =>
  run(process.execPath, [BIN, ...args], { maxBuffer: 10 * 1024 * 1024, env: { ...process.env, CI: 'true' } });

/** The bundled demo model (trained on the real C-NMC sample) in `dir`, with some card fields replaced. */
async function demoModelWith(dir: string, changes: Record<string, unknown>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const file of ['model.json', 'weights.bin'])
    await copyFile(path.join(DEMO, file), path.join(dir, file));
  const card = JSON.parse(await readFile(path.join(DEMO, 'card.json'), 'utf8'));
  await writeFile(path.join(dir, 'card.json'), JSON.stringify({ ...card, ...changes }));
  return dir;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * What `lymphoscope predict` and `evaluate` say about their own answers, with the demo model on real
 * sample cells: the threshold and review state beside each call, and for a folder whether its images
 * were in the training set and what the review band caught.
 */
describe('the command line says what its answers mean', () => {
  let dir: string;
  const images = sampleImages();
  const blasts = images.filter((i) => i.label === 'ALL').slice(0, 3);
  const normals = images.filter((i) => i.label === 'NORMAL').slice(0, 3);
  let folder: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-self-report-'));
    // Normal cells under normal/, as labs other than C-NMC name them.
    folder = path.join(dir, 'cells');
    for (const [sub, cells] of [
      ['all', blasts],
      ['normal', normals],
    ] as const) {
      await mkdir(path.join(folder, sub), { recursive: true });
      for (const cell of cells) await writeFile(path.join(folder, sub, cell.name), cell.bytes);
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('predict gives the label, p(ALL), the threshold and the review state with its reasons, in text and JSON', async () => {
    const card = JSON.parse(await readFile(path.join(DEMO, 'card.json'), 'utf8'));
    // Every probability inside the band: every cell needs review, for UNCERTAIN.
    const everything = await demoModelWith(path.join(dir, 'band-everything'), {
      reviewLow: 0,
      reviewHigh: 1,
    });
    const files = [blasts[0].file, normals[0].file];
    for (const model of [DEMO, everything]) {
      const rows = (await cli('predict', '--model', model, '--json', ...files)).stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const text = (await cli('predict', '--model', model, ...files)).stdout.trim().split('\n');
      expect(rows).toHaveLength(2);
      for (const [i, row] of rows.entries()) {
        const band = model === DEMO ? card : { reviewLow: 0, reviewHigh: 1 };
        const inBand = row.probabilityAll >= band.reviewLow && row.probabilityAll < band.reviewHigh;
        expect(row).toMatchObject({
          file: files[i],
          threshold: card.threshold,
          reviewLow: band.reviewLow,
          reviewHigh: band.reviewHigh,
          label: row.probabilityAll >= card.threshold ? 'ALL' : 'NORMAL',
          needsReview: row.reviewReasons.length > 0,
        });
        // UNCERTAIN exactly inside the band; OUT_OF_DOMAIN only from a card with an out-of-domain model.
        expect(row.reviewReasons.includes('UNCERTAIN')).toBe(inBand);
        if (row.outOfDomainScore === null) expect(row.reviewReasons).toEqual(inBand ? ['UNCERTAIN'] : []);
        expect(text[i]).toBe(
          `${files[i]}: ${row.label} p(ALL)=${row.probabilityAll.toFixed(2)} (threshold ${card.threshold.toFixed(2)}) - ` +
            (row.needsReview
              ? `needs review: ${row.reviewReasons.join(', ')}`
              : band.reviewLow < band.reviewHigh
                ? `no review asked (outside the review band [${band.reviewLow.toFixed(2)}, ${band.reviewHigh.toFixed(2)}))`
                : 'no review asked (this model has an empty review band)'),
        );
      }
      if (model === everything) expect(rows.every((r) => r.needsReview)).toBe(true);
    }
  }, 120_000);

  it('evaluate reads normal/, reports overlap with the training set and what review caught', async () => {
    // A card that lists two of the folder's images as training images, and sends the blasts' band to review.
    const trained = [blasts[1], normals[2]].map((c) => sha256(c.bytes));
    const model = await demoModelWith(path.join(dir, 'with-hashes'), {
      trainingImageSha256: [...trained, sha256(Buffer.from('not an image of this folder'))],
      reviewLow: 0,
      reviewHigh: 1,
    });
    const withHashes = await cli('evaluate', '--model', model, '--data', folder, '--json');
    const summary = JSON.parse(withHashes.stdout.trim());
    expect(summary.n).toBe(6);
    expect(summary.classes).toEqual({ all: 3, normal: 3 });
    expect(summary.overlapWithTraining).toEqual({ known: true, count: 2, share: 2 / 6 });
    expect(withHashes.stderr).toContain("2 of 6 images (33.3%) are in the model's training set");
    // With the band over [0, 1), every cell waits for a person: no blast can slip through.
    expect(summary).toMatchObject({
      allOrReviewSensitivity: 1,
      reviewRate: 1,
      reviewReasons: { UNCERTAIN: 6 },
    });
    // Null without an out-of-domain model in the card, else the share flagged.
    if (summary.outOfDomainRate !== null)
      expect(summary.outOfDomainRate).toBe(summary.reviewReasons.OUT_OF_DOMAIN / 6);
    else expect(summary.reviewReasons.OUT_OF_DOMAIN).toBe(0);

    // A card without the hashes: overlap unknown (and said so); review figures consistent with the metrics.
    const noHashes = await demoModelWith(path.join(dir, 'no-hashes'), { trainingImageSha256: undefined });
    const plain = await cli('evaluate', '--model', noHashes, '--data', folder, '--json');
    const demo = JSON.parse(plain.stdout.trim());
    expect(demo.overlapWithTraining).toMatchObject({ known: false, count: null, share: null });
    expect(plain.stderr).toContain('overlap with its training set is unknown');
    expect(demo.accuracy).toBeCloseTo((demo.confusion.tp + demo.confusion.tn) / 6, 10);
    // A blast is caught when called ALL or sent to review: never fewer than the ALL calls alone.
    expect(demo.allOrReviewSensitivity).toBeGreaterThanOrEqual(demo.sensitivity);
    // A cell may carry both reasons, so the cells sent to review lie between the larger count and the sum.
    const flagged = Math.round(demo.reviewRate * 6);
    const { UNCERTAIN: uncertain, OUT_OF_DOMAIN: outOfDomain } = demo.reviewReasons;
    expect(flagged).toBeGreaterThanOrEqual(Math.max(uncertain, outOfDomain));
    expect(flagged).toBeLessThanOrEqual(uncertain + outOfDomain);
  }, 120_000);

  it('evaluate refuses a folder with images outside the class folders it knows, with a non-zero exit', async () => {
    // all/ beside a class folder it does not know: scoring only the blasts would say nothing true.
    const mixed = path.join(dir, 'mixed');
    await mkdir(path.join(mixed, 'all'), { recursive: true });
    await mkdir(path.join(mixed, 'benign'), { recursive: true });
    await writeFile(path.join(mixed, 'all', blasts[0].name), blasts[0].bytes);
    await writeFile(path.join(mixed, 'benign', normals[0].name), normals[0].bytes);
    await expect(cli('evaluate', '--data', mixed, '--json')).rejects.toMatchObject({
      code: 1,
      stdout: '',
      stderr: expect.stringMatching(/outside a class folder it knows \(benign\/\).*all\/.*normal\//),
    });
    // Images straight in the folder, with no class folder at all.
    const flat = path.join(dir, 'flat');
    await mkdir(flat, { recursive: true });
    await writeFile(path.join(flat, normals[1].name), normals[1].bytes);
    await expect(cli('evaluate', '--data', flat)).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining(`outside a class folder it knows (${normals[1].name})`),
    });
    const empty = path.join(dir, 'empty');
    await mkdir(empty, { recursive: true });
    await expect(cli('evaluate', '--data', empty)).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('No images in'),
    });
  }, 120_000);
});
