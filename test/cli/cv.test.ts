import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { configFromFlags, readCvSummary } from '../../src/cli/commands';
import { DEFAULT_TRAINING_CONFIG, RECIPE_LEVERS_OFF } from '../../src/ml/training/train';
import { sampleImages } from '../helpers/sample';

const run = promisify(execFile);
const BIN = path.join(__dirname, '..', '..', 'bin', 'lymphoscope.js');

describe('configFromFlags', () => {
  it('starts from the default recipe, or with --recipe plain from the same with every lever off', () => {
    expect(configFromFlags({})).toEqual(DEFAULT_TRAINING_CONFIG);
    expect(configFromFlags({ recipe: 'plain' })).toEqual({
      ...DEFAULT_TRAINING_CONFIG,
      ...RECIPE_LEVERS_OFF,
    });
  });

  it('sets each lever from its flag, on top of the recipe', () => {
    const config = configFromFlags({
      recipe: 'plain',
      tta: true,
      'bn-recompute': true,
      'colour-jitter': '0.3',
      fusion: 'morphology-stack',
      'input-size': '48',
    });
    expect(config).toMatchObject({
      testTimeAugmentation: true,
      recomputeBatchNorm: true,
      colourJitter: 0.3,
      fusion: 'morphology-stack',
      inputSize: 48,
    });
    expect(configFromFlags({ 'no-tta': true, 'no-bn-recompute': true, 'no-augment': true })).toMatchObject({
      testTimeAugmentation: false,
      recomputeBatchNorm: false,
      augment: false,
    });
  });

  it('refuses contradictions and unknown values', () => {
    expect(() => configFromFlags({ tta: true, 'no-tta': true })).toThrow(/contradict/);
    expect(() => configFromFlags({ recipe: 'fancy' })).toThrow(/--recipe/);
    expect(() => configFromFlags({ fusion: 'magic' })).toThrow(/--fusion/);
    expect(() => configFromFlags({ 'colour-jitter': 'lots' })).toThrow(/number/);
  });
});

describe('lymphoscope cv', () => {
  let dir: string;
  beforeAll(async () => {
    // Two cells of each of 8 subjects (4 ALL, 4 normal): small enough to decode and train in seconds.
    dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-cv-'));
    const bySubject = new Map<string, string[]>();
    for (const image of sampleImages()) {
      const subject = image.name.split('_')[1];
      bySubject.set(subject, [...(bySubject.get(subject) ?? []), image.file]);
    }
    const pairs = [...bySubject.entries()].filter(([, files]) => files.length >= 2);
    const chosen = [
      ...pairs.filter(([s]) => !/^h/i.test(s)).slice(0, 4),
      ...pairs.filter(([s]) => /^h/i.test(s)).slice(0, 4),
    ];
    for (const [, files] of chosen) {
      for (const file of files.slice(0, 2)) {
        const folder = path.join(dir, path.basename(path.dirname(file)));
        await mkdir(folder, { recursive: true });
        await copyFile(file, path.join(folder, path.basename(file)));
      }
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('prints a line per fold, the table, and the whole summary as JSON on the last line', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        BIN,
        'cv',
        '--data',
        dir,
        '--folds',
        '2',
        '--repeats',
        '2',
        '--input-size',
        '32',
        '--epochs',
        '1',
        '--tta',
      ],
      { maxBuffer: 10 * 1024 * 1024, env: { ...process.env, CI: 'true' } },
    );
    const lines = stdout.trim().split('\n');
    expect(lines.filter((l) => /^repeat \d fold \d/.test(l))).toHaveLength(4);
    expect(stdout).toMatch(/texture-blend-tta \(recipe\)/);
    const summary = JSON.parse(lines.at(-1)!);
    expect(summary).toMatchObject({
      n: 16,
      subjects: 8,
      folds: 2,
      repeats: 2,
      recipeScorer: 'texture-blend-tta',
    });
    expect(summary.config.testTimeAugmentation).toBe(true);
    expect(summary.perFold).toHaveLength(4);
    expect(summary.summary.morphology.rocAuc.n).toBeGreaterThan(0);
    expect(summary.summary.texture.rocAuc.n).toBeGreaterThan(0);
    expect(summary.summary.majority.rocAuc.mean).toBe(0.5);

    // `train --cv-summary` puts it into the card, for the same recipe only.
    const file = path.join(dir, 'cv.txt');
    await writeFile(file, stdout);
    const same = configFromFlags({ 'input-size': '32', epochs: '1', tta: true, seed: '9' });
    const card = await readCvSummary(file, same);
    expect(card).toMatchObject({ n: 16, subjects: 8, folds: 2, repeats: 2, scorer: 'texture-blend-tta' });
    expect(card.metrics.rocAuc).toEqual(summary.summary['texture-blend-tta'].rocAuc);
    expect(card.baselines.morphology.weightedF1).toEqual(summary.summary.morphology.weightedF1);
    await expect(readCvSummary(file, { ...same, inputSize: 48 })).rejects.toThrow(/inputSize/);
    await expect(readCvSummary(file, { ...same, testTimeAugmentation: false })).rejects.toThrow(
      /testTimeAugmentation/,
    );
  }, 60_000);
});
