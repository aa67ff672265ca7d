import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeImage } from '../../../src/ml/image/decode';
import type { RgbImage } from '../../../src/ml/image/types';
import {
  COMPARED_FEATURES,
  compareToNorms,
  MORPHOLOGY_FEATURES,
  measureMorphology,
  morphologyNorms,
  segmentCell,
  type Morphology,
} from '../../../src/ml/features/morphology';

const SAMPLE = path.join(__dirname, '../../../data/cnmc-sample');

/** A 300x300 black canvas with a purple shape wherever `inside(x, y)`; pixel centres are at (x, y). */
function drawn(
  inside: (x: number, y: number) => boolean,
  colour: [number, number, number] = [120, 50, 130],
): RgbImage {
  const size = 300;
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) if (inside(x, y)) data.set(colour, (y * size + x) * 3);
  return { width: size, height: size, data };
}

const disc = (cx: number, cy: number, r: number) => (x: number, y: number) =>
  (x - cx) ** 2 + (y - cy) ** 2 <= r * r;

describe('measureMorphology on shapes with known answers', () => {
  it('a disc: area pi r^2, circularity ~1, solidity ~1, eccentricity ~0', () => {
    const m = measureMorphology(drawn(disc(150, 150, 100)));
    expect(m.areaPx / (Math.PI * 100 * 100)).toBeCloseTo(1, 2);
    expect(m.equivalentDiameterPx).toBeCloseTo(200, 0);
    expect(Math.abs(m.perimeterPx / (2 * Math.PI * 100) - 1)).toBeLessThan(0.005);
    expect(m.circularity).toBeGreaterThan(0.98);
    expect(m.circularity).toBeLessThan(1.01);
    expect(m.solidity).toBeGreaterThan(0.98);
    expect(m.solidity).toBeLessThanOrEqual(1);
    expect(m.eccentricity).toBeLessThan(0.05);
    expect(m.meanRgb).toEqual([120, 50, 130]);
    expect(m.meanIntensity).toBeCloseTo(0.299 * 120 + 0.587 * 50 + 0.114 * 130, 6);
    expect(m.intensityStd).toBeCloseTo(0, 6);
  });

  it('a small disc, and a square upright and turned: circularity about 1 and pi/4', () => {
    expect(measureMorphology(drawn(disc(50, 50, 12))).circularity).toBeGreaterThan(0.94);
    const square = measureMorphology(drawn((x, y) => x >= 100 && x < 200 && y >= 100 && y < 200));
    expect(square.areaPx).toBe(10000);
    expect(Math.abs(square.circularity - Math.PI / 4)).toBeLessThan(0.04);
    expect(square.solidity).toBe(1);
    expect(square.eccentricity).toBeLessThan(0.01);
    const turn = Math.PI / 6;
    const turned = measureMorphology(
      drawn((x, y) => {
        const u = (x - 150) * Math.cos(turn) + (y - 150) * Math.sin(turn);
        const v = -(x - 150) * Math.sin(turn) + (y - 150) * Math.cos(turn);
        return Math.abs(u) < 50 && Math.abs(v) < 50;
      }),
    );
    expect(Math.abs(turned.circularity - Math.PI / 4)).toBeLessThan(0.02);
    expect(turned.solidity).toBeGreaterThan(0.97);
  });

  it('an ellipse with axes 120 and 60: eccentricity sqrt(1 - 1/4)', () => {
    const m = measureMorphology(drawn((x, y) => ((x - 150) / 120) ** 2 + ((y - 150) / 60) ** 2 <= 1));
    expect(m.eccentricity).toBeCloseTo(Math.sqrt(0.75), 2);
    expect(m.solidity).toBeGreaterThan(0.98);
    // Ramanujan's perimeter of that ellipse is 578.2.
    expect(m.perimeterPx / 578.2).toBeCloseTo(1, 1);
    expect(m.circularity).toBeLessThan(0.9);
  });

  it('a clefted cell: lower solidity and circularity than the disc it was cut from', () => {
    const round = measureMorphology(drawn(disc(150, 150, 100)));
    // A wedge 40 degrees wide cut into the right side, reaching the centre.
    const cleft = measureMorphology(
      drawn(
        (x, y) =>
          disc(150, 150, 100)(x, y) &&
          !(x > 150 && Math.abs(Math.atan2(y - 150, x - 150)) < (20 * Math.PI) / 180),
      ),
    );
    expect(cleft.solidity).toBeLessThan(round.solidity - 0.05);
    expect(cleft.solidity).toBeCloseTo(1 - 40 / 360, 1);
    expect(cleft.circularity).toBeLessThan(round.circularity - 0.15);
  });

  it('texture: a mottled cell has a higher intensity spread than a flat one', () => {
    const flat = measureMorphology(drawn(disc(150, 150, 80), [100, 40, 110]));
    const mottled = drawn(disc(150, 150, 80), [100, 40, 110]);
    for (let i = 0; i < mottled.data.length; i += 3 * 7) if (mottled.data[i]) mottled.data[i] = 160;
    expect(measureMorphology(mottled).intensityStd).toBeGreaterThan(flat.intensityStd + 5);
  });
});

describe('segmentCell', () => {
  it('keeps the largest component, drops specks and fills holes (vacuoles)', () => {
    const img = drawn((x, y) => {
      const inCell = disc(150, 150, 60)(x, y) && !disc(160, 140, 15)(x, y); // a black vacuole inside
      const speck = disc(20, 20, 4)(x, y);
      return inCell || speck;
    });
    const mask = segmentCell(img);
    expect(mask[140 * 300 + 160]).toBe(1); // the vacuole counts as cell
    expect(mask[20 * 300 + 20]).toBe(0); // the speck does not
    const area = mask.reduce((a, b) => a + b, 0);
    expect(area).toBe(measureMorphology(drawn(disc(150, 150, 60))).areaPx);
  });

  it('finds nothing on a black image, and measureMorphology says so with NaN', () => {
    const black: RgbImage = { width: 50, height: 50, data: new Uint8Array(50 * 50 * 3) };
    expect(segmentCell(black).every((v) => v === 0)).toBe(true);
    const m = measureMorphology(black);
    expect(m.areaPx).toBe(0);
    expect(m.circularity).toBeNaN();
    expect(m.solidity).toBeNaN();
    expect(JSON.parse(JSON.stringify(m)).circularity).toBeNull();
  });

  it('measures a one-pixel cell without crashing', () => {
    const m = measureMorphology(drawn((x, y) => x === 10 && y === 10));
    expect(m.areaPx).toBe(1);
    expect(m.perimeterPx).toBe(0);
    expect(m.circularity).toBeNaN();
  });
});

describe('real C-NMC cells', () => {
  let measured: Array<{ m: Morphology; label: 0 | 1; file: string }>;

  beforeAll(async () => {
    const lines = readFileSync(path.join(SAMPLE, 'MANIFEST.csv'), 'utf8').trim().split('\n').slice(1);
    measured = [];
    for (const line of lines) {
      const [file, label] = line.split(',');
      const img = await decodeImage(readFileSync(path.join(SAMPLE, file)));
      measured.push({ m: measureMorphology(img), label: label === 'all' ? 1 : 0, file });
    }
  });

  it('finds one plausible cell in every image', () => {
    for (const { m } of measured) {
      // Sample cells are 150-300 px across on the 450 px canvas.
      expect(m.equivalentDiameterPx).toBeGreaterThan(120);
      expect(m.equivalentDiameterPx).toBeLessThan(330);
      expect(m.circularity).toBeGreaterThan(0.4);
      expect(m.circularity).toBeLessThan(1.05);
      expect(m.solidity).toBeGreaterThan(0.75);
      expect(m.solidity).toBeLessThanOrEqual(1);
      // Stained purple: red and blue above green.
      expect(m.meanRgb[2]).toBeGreaterThan(m.meanRgb[1]);
    }
  });

  it('ALL blasts are larger and less round on average in the sample (38.8k vs 30.8k px, circularity 0.84 vs 0.92)', () => {
    const norms = morphologyNorms(measured);
    expect(norms.all.n).toBe(31);
    expect(norms.hem.n).toBe(32);
    expect(norms.all.mean.areaPx!).toBeGreaterThan(norms.hem.mean.areaPx! * 1.15);
    expect(norms.all.mean.circularity!).toBeLessThan(norms.hem.mean.circularity!);
    expect(norms.all.mean.solidity!).toBeLessThan(norms.hem.mean.solidity!);
  });

  it('compares a cell with the class norms by ratio and z-score', () => {
    const norms = morphologyNorms(measured);
    const big = measured.reduce((a, b) => (b.m.areaPx > a.m.areaPx ? b : a));
    const area = compareToNorms(big.m, norms).find((c) => c.feature === 'areaPx')!;
    expect(area.value).toBe(big.m.areaPx);
    expect(area.ratioToAll).toBeCloseTo(big.m.areaPx / norms.all.mean.areaPx!, 12);
    expect(area.zHem).toBeCloseTo((big.m.areaPx - norms.hem.mean.areaPx!) / norms.hem.std.areaPx!, 12);
    expect(area.zHem).toBeGreaterThan(area.zAll);
    expect(area.closerTo).toBe('all');
    // Bare means, as older model cards store them, still give ratios and a verdict.
    const bare = compareToNorms(big.m, { all: norms.all.mean, hem: norms.hem.mean }).find(
      (c) => c.feature === 'areaPx',
    )!;
    expect(bare.zAll).toBeNaN();
    expect(bare.ratioToHem).toBeCloseTo(area.ratioToHem, 12);
    expect(bare.closerTo).toBe('all');
  });

  it('compares the chromatin texture too, and leaves it out for a record measured before texture', () => {
    const norms = morphologyNorms(measured);
    const cell = measured[0].m;
    const comparisons = compareToNorms(cell, norms);
    const nucleus = comparisons.find((c) => c.feature === 'nucleusShare')!;
    expect(nucleus.value).toBe(cell.texture!.nucleusShare);
    expect(norms.all.n).toBe(31);
    expect(nucleus.zAll).toBeCloseTo(
      (cell.texture!.nucleusShare - norms.all.mean.nucleusShare!) / norms.all.std.nucleusShare!,
      12,
    );
    expect(comparisons.map((c) => c.feature)).toEqual([...COMPARED_FEATURES]);
    const old = compareToNorms({ ...cell, texture: undefined }, norms);
    expect(old.map((c) => c.feature)).toEqual([...MORPHOLOGY_FEATURES]);
  });
});

describe('morphologyNorms', () => {
  it('computes class means and sample standard deviations, skipping NaN', () => {
    const m = (areaPx: number, circularity: number) => ({ areaPx, circularity }) as Morphology;
    const norms = morphologyNorms([
      { m: m(10, 0.9), label: 1 },
      { m: m(20, NaN), label: 1 },
      { m: m(30, 0.7), label: 1 },
      { m: m(5, 1), label: 0 },
    ]);
    expect(norms.all.mean.areaPx).toBe(20);
    expect(norms.all.std.areaPx).toBe(10);
    expect(norms.all.mean.circularity).toBeCloseTo(0.8, 12);
    expect(norms.hem.mean.areaPx).toBe(5);
    expect(norms.hem.std.areaPx).toBeNaN();
    expect(morphologyNorms([]).all).toEqual({ n: 0, mean: {}, std: {} });
  });
});
