import {
  crossValidate,
  recipeScorer,
  SCORERS,
  spread,
  type CvItem,
} from '../../../src/ml/evaluation/cross-validation';
import { toModelInput } from '../../../src/ml/image/preprocess';
import { applyLabShift } from '../../../src/ml/image/lab-shift';
import { measureMorphology } from '../../../src/ml/features/morphology';
import { initRuntime, liveTensors } from '../../../src/ml/runtime';
import { syntheticCell } from '../../../src/ml/data/synthetic';
import { DEFAULT_TRAINING_CONFIG, type TrainingConfig } from '../../../src/ml/training/train';

const SIZE = 32;

/** 24 synthetic cells of 8 subjects (3 each), half of them blasts, with a hue-shifted twin each. */
let items: CvItem[];
let hueShifted: CvItem[];
beforeAll(async () => {
  await initRuntime();
  items = [];
  hueShifted = [];
  for (let k = 0; k < 24; k++) {
    const subject = Math.floor(k / 3);
    const label: 0 | 1 = subject % 2 === 0 ? 1 : 0;
    const image = syntheticCell(100 + k, { label, size: 64 });
    const base = { id: `cell-${k}`, label, subjectId: `S${subject}` };
    items.push({ ...base, pixels: await toModelInput(image, SIZE), morphology: measureMorphology(image) });
    const shifted = await applyLabShift(image, 'hue');
    hueShifted.push({
      ...base,
      pixels: await toModelInput(shifted, SIZE),
      morphology: measureMorphology(shifted),
    });
  }
});

const config: TrainingConfig = {
  ...DEFAULT_TRAINING_CONFIG,
  inputSize: SIZE,
  epochs: 2,
  batchSize: 8,
  patience: 2,
};

describe('crossValidate', () => {
  it('scores every cell once per repeat, with every scorer, on the originals and the shifted twins', async () => {
    const before = liveTensors();
    const report = await crossValidate(items, config, {
      folds: 2,
      repeats: 2,
      shifts: [{ name: 'hue', items: hueShifted }],
    });
    expect(report.folds).toHaveLength(4);
    for (const repeat of [1, 2]) {
      const folds = report.folds.filter((f) => f.repeat === repeat);
      const ids = folds.flatMap((f) => f.testIds).sort();
      expect(ids).toEqual(items.map((i) => i.id).sort());
      for (const fold of folds) {
        expect(fold.counts.train + fold.counts.validation + fold.counts.test).toBe(items.length);
        expect(fold.seed).toBe(config.seed + repeat - 1);
      }
    }
    for (const fold of report.folds) {
      for (const scorer of SCORERS) {
        expect(fold.scores[scorer].n).toBe(fold.counts.test);
        expect(fold.shifted.hue[scorer].n).toBe(fold.counts.test);
        for (const p of fold.testProbabilities[scorer]) expect(p >= 0 && p <= 1).toBe(true);
      }
    }
    expect(report.summary.majority.rocAuc.mean).toBe(0.5);
    expect(report.summary.cnn.weightedF1.n).toBe(4);
    expect(report.pooledRocAuc.cnn.n).toBe(2);
    expect(report.recipeScorer).toBe(recipeScorer(config));
    // Two repeats draw different folds: the test sets of repeat 1 and 2 differ somewhere.
    expect(report.folds[0].testIds).not.toEqual(report.folds[2].testIds);
    expect(liveTensors()).toBe(before);
  });

  it('refuses a shift that lacks cells, and bad fold or repeat counts', async () => {
    await expect(
      crossValidate(items, config, {
        folds: 2,
        repeats: 1,
        shifts: [{ name: 'x', items: hueShifted.slice(1) }],
      }),
    ).rejects.toThrow(/lacks/);
    await expect(crossValidate(items, config, { folds: 1, repeats: 1 })).rejects.toThrow(/folds/);
    await expect(crossValidate(items, config, { folds: 2, repeats: 0 })).rejects.toThrow(/repeats/);
  });
});

describe('recipeScorer and spread', () => {
  it('serve with the scorer the recipe names', () => {
    expect(recipeScorer({ fusion: 'none', testTimeAugmentation: false })).toBe('cnn');
    expect(recipeScorer({ fusion: 'none', testTimeAugmentation: true })).toBe('cnn-tta');
    expect(recipeScorer({ fusion: 'morphology-stack', testTimeAugmentation: true })).toBe('stack-tta');
    expect(recipeScorer({ fusion: 'morphology-blend', testTimeAugmentation: false })).toBe('blend');
  });

  it('gives mean and sample standard deviation of the finite values', () => {
    const s = spread([1, 2, 3, NaN]);
    expect(s).toEqual({ mean: 2, std: 1, n: 3 });
    expect(spread([NaN]).n).toBe(0);
  });
});
