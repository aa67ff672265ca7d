import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage } from '../../../src/ml/image/decode';
import type { RgbImage } from '../../../src/ml/image/types';
import { measureMorphology, segmentCell } from '../../../src/ml/features/morphology';
import { Rng } from '../../../src/ml/rng';
import {
  measureTexture,
  TEXTURE_FEATURES,
  textureVector,
  type Texture,
} from '../../../src/ml/features/texture';

const SIZE = 96;

/**
 * A disc of radius 30 on black whose inside is `shade(x, y)` (grey, 0-255), placed at (cx, cy).
 */
function disc(shade: (x: number, y: number) => number, cx = 48, cy = 48): RgbImage {
  const data = new Uint8Array(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      if ((x - cx) ** 2 + (y - cy) ** 2 > 30 ** 2) continue;
      const v = shade(x - cx, y - cy);
      data.set([v, v, v], (y * SIZE + x) * 3);
    }
  return { width: SIZE, height: SIZE, data };
}

const texture = (img: RgbImage) => measureTexture(img, segmentCell(img));

/** Fine chromatin: pixel noise around a mid grey. */
function fine(seed = 1) {
  const rng = new Rng(seed);
  return (x: number, y: number) => 120 + Math.round(20 * (rng.next() - 0.5)) + 0 * (x + y);
}
/** Coarse, clumped chromatin: dark blobs of 6 px on a light ground. */
const clumped = (x: number, y: number) =>
  Math.floor((x + 60) / 6) % 2 === Math.floor((y + 60) / 6) % 2 ? 70 : 170;

describe('chromatin texture', () => {
  it('tells clumped chromatin from fine chromatin', () => {
    const f = texture(disc(fine()));
    const c = texture(disc(clumped));
    // At distance 2, pixels of one clump share a level: co-occurrence is homogeneous and concentrated.
    expect(c.glcmHomogeneity).toBeGreaterThan(f.glcmHomogeneity);
    expect(c.glcmEnergy).toBeGreaterThan(f.glcmEnergy);
    expect(c.glcmCorrelation).toBeGreaterThan(f.glcmCorrelation);
    expect(c.lbpFlat).toBeGreaterThan(f.lbpFlat);
    expect(c.lumaSpread).toBeGreaterThan(f.lumaSpread);
    // Half the cell is clump, and Otsu splits it there.
    expect(c.darkShare).toBeCloseTo(0.5, 1);
    expect(c.nucleusShare).toBeCloseTo(0.5, 1);
    for (const name of TEXTURE_FEATURES) {
      expect(Number.isFinite(f[name])).toBe(true);
      expect(Number.isFinite(c[name])).toBe(true);
    }
  });

  it('does not change with the stain brightness or the cell position (levels are the cell s own percentiles)', () => {
    const base = texture(disc(clumped));
    const darker = texture(disc((x, y) => Math.round(clumped(x, y) * 0.7)));
    const moved = texture(disc(clumped, 36, 60));
    for (const name of TEXTURE_FEATURES.filter((n) => n !== 'lumaSpread' && n !== 'darkShare')) {
      expect(darker[name]).toBeCloseTo(base[name], 2);
    }
    // The clump pattern moves with the cell only up to its phase, so compare what does not depend on it.
    expect(moved.nucleusShare).toBeCloseTo(base.nucleusShare, 1);
    expect(moved.glcmContrast).toBeCloseTo(base.glcmContrast, 0);
  });

  it('gives NaN features, not zeros, when there is no cell', () => {
    const blank: RgbImage = { width: SIZE, height: SIZE, data: new Uint8Array(SIZE * SIZE * 3) };
    const t: Texture = texture(blank);
    expect(textureVector(t).every(Number.isNaN)).toBe(true);
    // and so does measureMorphology, whose texture it is
    expect(Number.isNaN(measureMorphology(blank).texture!.glcmEntropy)).toBe(true);
  });

  it('refuses a mask that does not fit the image', () => {
    const img = disc(clumped);
    expect(() => measureTexture(img, new Uint8Array(10))).toThrow(/96x96/);
  });

  it('is measured on every real cell, within the ranges its definitions allow', async () => {
    const dir = path.join(__dirname, '../../../data/cnmc-sample');
    for (const file of ['all/UID_11_1_1_all.bmp', 'hem/UID_H1_2_1_hem.bmp']) {
      const m = measureMorphology(await decodeImage(await readFile(path.join(dir, file))));
      const t = m.texture!;
      for (const share of [
        t.glcmHomogeneity,
        t.glcmEnergy,
        t.lbpUniform,
        t.lbpFlat,
        t.darkShare,
        t.nucleusShare,
      ]) {
        expect(share).toBeGreaterThan(0);
        expect(share).toBeLessThan(1);
      }
      expect(t.glcmEntropy).toBeGreaterThan(0);
      expect(t.glcmEntropy).toBeLessThanOrEqual(Math.log(16 * 16));
      expect(Math.abs(t.glcmCorrelation)).toBeLessThanOrEqual(1);
      expect(t.lumaSpread).toBeGreaterThan(0);
    }
  });
});
