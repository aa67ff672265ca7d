import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LymphoscopeError } from '../../../src/errors';
import { kFoldBySubject, parseCnmcFilename, splitBySubject, type SplitItem } from '../../../src/ml/data/splits';

const MANIFEST = path.join(__dirname, '../../../data/cnmc-sample/MANIFEST.csv');

function realSample(): SplitItem[] {
  return readFileSync(MANIFEST, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => {
      const [file] = line.split(',');
      const parsed = parseCnmcFilename(file);
      if (!parsed) throw new Error(`unparsable ${file}`);
      return { id: file, label: parsed.label === 'all' ? 1 : 0, subjectId: parsed.subjectId };
    });
}

/** A C-NMC-shaped data set: pure subjects of uneven size, ALL subjects about twice as many cells. */
function cnmcLike(subjectsPerLabel: number, seed: number): SplitItem[] {
  const items: SplitItem[] = [];
  for (let s = 0; s < subjectsPerLabel * 2; s++) {
    const label = s % 2 === 0 ? 1 : 0;
    const subjectId = label ? `${s}` : `H${s}`;
    const cells = 5 + ((s * 7 + seed * 13) % 17) * (label ? 2 : 1);
    for (let c = 0; c < cells; c++) items.push({ id: `${subjectId}-${c}`, label, subjectId });
  }
  return items;
}

const subjectsOf = (items: SplitItem[]) => new Set(items.map((item) => item.subjectId ?? `item:${item.id}`));
const labelsOf = (items: SplitItem[]) => new Set(items.map((item) => item.label));
const ids = (items: SplitItem[]) => items.map((item) => item.id).sort();

function expectDisjointSubjects(...sides: SplitItem[][]): void {
  const seen = new Map<string, number>();
  sides.forEach((side, index) => {
    for (const subject of subjectsOf(side)) {
      expect(seen.has(subject) ? `${subject} in sides ${seen.get(subject)} and ${index}` : 'ok').toBe('ok');
      seen.set(subject, index);
    }
  });
}

describe('parseCnmcFilename', () => {
  it('reads subject, image, cell and label, with or without folder and extension', () => {
    expect(parseCnmcFilename('UID_H10_47_2_hem.bmp')).toEqual({
      subjectId: 'H10',
      imageNo: 47,
      cellNo: 2,
      label: 'hem',
    });
    expect(parseCnmcFilename('all/UID_3_4_2_all.bmp')).toEqual({
      subjectId: '3',
      imageNo: 4,
      cellNo: 2,
      label: 'all',
    });
    expect(parseCnmcFilename('C:\\data\\UID_78_12_1_ALL.png')).toEqual({
      subjectId: '78',
      imageNo: 12,
      cellNo: 1,
      label: 'all',
    });
    expect(parseCnmcFilename('UID_h3_1_1_hem')).toEqual({
      subjectId: 'H3',
      imageNo: 1,
      cellNo: 1,
      label: 'hem',
    });
  });

  it.each([
    'cell.bmp',
    'UID_H10_47_hem.bmp',
    'UID_H10_47_2_blast.bmp',
    'xUID_1_1_1_all.bmp',
    'UID__1_1_all.bmp',
    '',
  ])('returns null for %j', (name) => expect(parseCnmcFilename(name)).toBeNull());

  it('parses every file of the real sample, agreeing with its manifest', () => {
    const lines = readFileSync(MANIFEST, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const [file, label, subject] = line.split(',');
      expect(parseCnmcFilename(file)).toMatchObject({ label, subjectId: subject.toUpperCase() });
    }
  });
});

describe('splitBySubject', () => {
  it('never puts a subject on two sides, keeps every item once and both labels everywhere (200 seeds)', () => {
    for (let seed = 0; seed < 200; seed++) {
      const items = cnmcLike(4 + (seed % 9), seed);
      const { train, validation, test } = splitBySubject(items, {
        validationFraction: 0.15,
        testFraction: 0.2,
        seed,
      });
      expectDisjointSubjects(train, validation, test);
      expect(ids([...train, ...validation, ...test])).toEqual(ids(items));
      for (const side of [train, validation, test]) expect(labelsOf(side)).toEqual(new Set([0, 1]));
    }
  });

  it('respects the fractions roughly on a larger data set', () => {
    const items = cnmcLike(40, 1);
    for (const seed of [1, 2, 3]) {
      const { train, validation, test } = splitBySubject(items, {
        validationFraction: 0.15,
        testFraction: 0.2,
        seed,
      });
      expect(validation.length / items.length).toBeCloseTo(0.15, 1);
      expect(test.length / items.length).toBeCloseTo(0.2, 1);
      expect(train.length / items.length).toBeCloseTo(0.65, 1);
      // Stratified: each side's ALL share is near the whole set's.
      const share = (side: SplitItem[]) => side.filter((item) => item.label === 1).length / side.length;
      for (const side of [train, validation, test])
        expect(Math.abs(share(side) - share(items))).toBeLessThan(0.1);
    }
  });

  it('is deterministic per seed, independent of input order, and different across seeds', () => {
    const items = cnmcLike(10, 4);
    const opts = { validationFraction: 0.2, testFraction: 0.2, seed: 42 };
    const a = splitBySubject(items, opts);
    const b = splitBySubject(items.slice().reverse(), opts);
    expect(ids(b.test)).toEqual(ids(a.test));
    expect(ids(b.validation)).toEqual(ids(a.validation));
    const others = [1, 2, 3, 4, 5].map((seed) => ids(splitBySubject(items, { ...opts, seed }).test).join());
    expect(new Set([...others, ids(a.test).join()]).size).toBeGreaterThan(1);
  });

  it('splits the real C-NMC sample by subject with both labels in every split', () => {
    const items = realSample();
    for (let seed = 0; seed < 50; seed++) {
      const { train, validation, test } = splitBySubject(items, {
        validationFraction: 0.2,
        testFraction: 0.2,
        seed,
      });
      expectDisjointSubjects(train, validation, test);
      expect(train.length + validation.length + test.length).toBe(63);
      for (const side of [train, validation, test]) expect(labelsOf(side)).toEqual(new Set([0, 1]));
    }
  });

  it('treats items without a subject as their own groups, and mixed subjects as one group', () => {
    const items: SplitItem[] = Array.from({ length: 40 }, (_, i) => ({
      id: `x${i}`,
      label: (i % 2) as 0 | 1,
      subjectId: null,
    }));
    items.push(
      { id: 'm1', label: 1, subjectId: 'M' },
      { id: 'm2', label: 0, subjectId: 'M' },
      { id: 'm3', label: 1, subjectId: 'M' },
    );
    for (let seed = 0; seed < 20; seed++) {
      const split = splitBySubject(items, { validationFraction: 0.25, testFraction: 0.25, seed });
      const sidesWithM = [split.train, split.validation, split.test].filter((side) =>
        side.some((item) => item.subjectId === 'M'),
      );
      expect(sidesWithM).toHaveLength(1);
      expect(sidesWithM[0].filter((item) => item.subjectId === 'M')).toHaveLength(3);
      expect(split.test.length).toBeGreaterThan(5);
    }
  });

  it('leaves a split empty when its fraction is 0, and rejects impossible fractions', () => {
    const items = cnmcLike(5, 0);
    expect(splitBySubject(items, { validationFraction: 0.2, testFraction: 0, seed: 1 }).test).toEqual([]);
    expect(() => splitBySubject(items, { validationFraction: 0.5, testFraction: 0.5, seed: 1 })).toThrow(
      LymphoscopeError,
    );
    expect(() => splitBySubject(items, { validationFraction: -0.1, testFraction: 0.2, seed: 1 })).toThrow(
      LymphoscopeError,
    );
  });
});

describe('kFoldBySubject', () => {
  it('puts every item in exactly one test fold and no subject on both sides of a fold (100 seeds)', () => {
    for (let seed = 0; seed < 100; seed++) {
      const items = cnmcLike(5 + (seed % 6), seed);
      const k = 2 + (seed % 4);
      const folds = kFoldBySubject(items, k, seed);
      expect(folds).toHaveLength(k);
      expect(ids(folds.flatMap((fold) => fold.test))).toEqual(ids(items));
      for (const fold of folds) {
        expectDisjointSubjects(fold.train, fold.test);
        expect(fold.train.length + fold.test.length).toBe(items.length);
        expect(labelsOf(fold.test)).toEqual(new Set([0, 1]));
      }
    }
  });

  it('makes folds of similar size on the real sample, deterministically', () => {
    const items = realSample();
    const folds = kFoldBySubject(items, 5, 7);
    const sizes = folds.map((fold) => fold.test.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(4);
    expect(kFoldBySubject(items, 5, 7).map((fold) => ids(fold.test))).toEqual(
      folds.map((fold) => ids(fold.test)),
    );
  });

  it('refuses k below 2 or above the number of subjects', () => {
    const items = cnmcLike(2, 0);
    expect(() => kFoldBySubject(items, 1, 0)).toThrow(LymphoscopeError);
    expect(() => kFoldBySubject(items, 5, 0)).toThrow(/at least 5 subjects; there are 4/);
  });
});
