import { badInput } from '../../errors';
import { mulberry32 } from '../rng';

/**
 * Train/validation/test splits that never put two cells of one subject on two sides. Cells of one
 * patient share staining, scanner and disease stage, so a random split lets a model recognise the
 * patient instead of the disease and reports a figure no new patient will see. C-NMC's own test set
 * was split by subject for that reason.
 */

export type CnmcLabel = 'all' | 'hem';

export interface CnmcName {
  subjectId: string;
  imageNo: number;
  cellNo: number;
  label: CnmcLabel;
}

const CNMC_NAME = /^UID_([A-Za-z]*\d+)_(\d+)_(\d+)_(all|hem)(?:\.[A-Za-z0-9]+)?$/i;

/**
 * Reads a C-NMC file name, `UID_<subject>_<image>_<cell>_<label>.bmp`, with or without a folder or an
 * extension. Subject ids are upper-cased: the published data spells one healthy donor both `H3` and
 * `h3`-style, and merging two spellings of one donor is safe while splitting one donor in two leaks.
 * Returns null for any other name.
 */
export function parseCnmcFilename(name: string): CnmcName | null {
  const base = name.split(/[\\/]/).pop() ?? '';
  const match = CNMC_NAME.exec(base);
  if (!match) return null;
  return {
    subjectId: match[1].toUpperCase(),
    imageNo: Number(match[2]),
    cellNo: Number(match[3]),
    label: match[4].toLowerCase() as CnmcLabel,
  };
}

export interface SplitItem {
  id: string;
  /** 1 = ALL, 0 = normal (hem). */
  label: 0 | 1;
  subjectId?: string | null;
}

export interface Split<T> {
  train: T[];
  validation: T[];
  test: T[];
}

function shuffle<T>(list: T[], random: () => number): T[] {
  const out = list.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

interface Group<T> {
  key: string;
  items: T[];
  label: 0 | 1;
}

/**
 * Groups items by subject; an item without a subject is a group of its own. A group's label is its
 * majority label (ties go to ALL). C-NMC subjects are pure (a healthy donor only has normal cells, a
 * patient's cells were all labelled ALL), so stratifying means drawing whole subjects from each pool.
 * Groups are sorted by key, so which items land where depends on the seed, never on input order.
 */
function groupBySubject<T extends SplitItem>(items: T[]): { pools: [Group<T>[], Group<T>[]] } {
  const byKey = new Map<string, T[]>();
  for (const item of items) {
    if (item.label !== 0 && item.label !== 1)
      throw badInput(`Item '${item.id}' has label ${item.label}; use 0 or 1.`);
    const key = item.subjectId ? `subject:${item.subjectId}` : `item:${item.id}`;
    const list = byKey.get(key);
    if (list) list.push(item);
    else byKey.set(key, [item]);
  }
  const pools: [Group<T>[], Group<T>[]] = [[], []];
  for (const key of [...byKey.keys()].sort()) {
    const groupItems = byKey.get(key)!;
    const positives = groupItems.filter((item) => item.label === 1).length;
    const label = positives * 2 >= groupItems.length ? 1 : 0;
    pools[label].push({ key, items: groupItems, label });
  }
  return { pools };
}

const count = <T>(groups: Group<T>[]) => groups.reduce((sum, group) => sum + group.items.length, 0);

/**
 * Deals a pool of groups into buckets whose item counts approach `targets`: each group, in random
 * order, goes to the bucket furthest below its target. Then every bucket with a positive target that
 * came out empty takes the smallest group from the bucket with the most groups, as long as that one
 * keeps at least one, so each split sees this label whenever the pool has enough subjects.
 */
function deal<T>(groups: Group<T>[], targets: number[], random: () => number): Group<T>[][] {
  const buckets: Group<T>[][] = targets.map(() => []);
  const sizes = targets.map(() => 0);
  for (const group of shuffle(groups, random)) {
    let best = 0;
    for (let b = 1; b < targets.length; b++) {
      if (targets[b] - sizes[b] > targets[best] - sizes[best]) best = b;
    }
    buckets[best].push(group);
    sizes[best] += group.items.length;
  }
  for (let b = 0; b < targets.length; b++) {
    if (targets[b] <= 0 || buckets[b].length > 0) continue;
    const donor = buckets.reduce((most, bucket, i) => (bucket.length > buckets[most].length ? i : most), 0);
    if (buckets[donor].length < 2) continue;
    const smallest = buckets[donor].reduce(
      (min, g, i) => (g.items.length < buckets[donor][min].items.length ? i : min),
      0,
    );
    buckets[b].push(...buckets[donor].splice(smallest, 1));
  }
  return buckets;
}

function checkFraction(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0 || value >= 1)
    throw badInput(`${name} must be in [0, 1); got ${value}.`);
}

/**
 * Splits items into train, validation and test so that no subject appears in two splits, each label's
 * subjects are divided in the requested fractions (by item count, as closely as whole subjects allow),
 * and every split gets subjects of both labels when each label has at least three subjects. The same
 * items and seed always give the same split, whatever the input order.
 */
export function splitBySubject<T extends SplitItem>(
  items: T[],
  opts: { validationFraction: number; testFraction: number; seed: number },
): Split<T> {
  checkFraction('validationFraction', opts.validationFraction);
  checkFraction('testFraction', opts.testFraction);
  if (opts.validationFraction + opts.testFraction >= 1) {
    throw badInput('validationFraction + testFraction must be below 1, leaving items to train on.');
  }
  const random = mulberry32(opts.seed);
  const { pools } = groupBySubject(items);
  const split: Split<T> = { train: [], validation: [], test: [] };
  for (const pool of pools) {
    const total = count(pool);
    const targets = [
      total * (1 - opts.validationFraction - opts.testFraction),
      total * opts.validationFraction,
      total * opts.testFraction,
    ];
    const [train, validation, test] = deal(pool, targets, random);
    split.train.push(...train.flatMap((g) => g.items));
    split.validation.push(...validation.flatMap((g) => g.items));
    split.test.push(...test.flatMap((g) => g.items));
  }
  return split;
}

/**
 * k folds for cross-validation: each subject lands in the test side of exactly one fold, and each
 * label's subjects are spread over the folds as evenly as their sizes allow.
 */
export function kFoldBySubject<T extends SplitItem>(
  items: T[],
  k: number,
  seed: number,
): Array<{ train: T[]; test: T[] }> {
  const { pools } = groupBySubject(items);
  const groups = pools[0].length + pools[1].length;
  if (!Number.isInteger(k) || k < 2) throw badInput(`k must be an integer of at least 2; got ${k}.`);
  if (k > groups) throw badInput(`k = ${k} folds need at least ${k} subjects; there are ${groups}.`);
  const random = mulberry32(seed);
  const folds: Group<T>[][] = Array.from({ length: k }, () => []);
  for (const pool of pools) {
    const total = count(pool);
    const dealt = deal(pool, Array<number>(k).fill(total / k), random).sort((a, b) => count(b) - count(a));
    // This label's largest share goes to the fold that is smallest so far, so fold sizes stay even.
    const foldsBySize = folds
      .map((_, fold) => fold)
      .sort((a, b) => count(folds[a]) - count(folds[b]) || a - b);
    dealt.forEach((bucket, rank) => folds[foldsBySize[rank]].push(...bucket));
  }
  return folds.map((testGroups, fold) => ({
    train: folds.flatMap((groupsOfFold, other) =>
      other === fold ? [] : groupsOfFold.flatMap((g) => g.items),
    ),
    test: testGroups.flatMap((g) => g.items),
  }));
}
