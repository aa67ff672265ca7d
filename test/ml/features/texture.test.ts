import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage } from '../../../src/ml/image/decode';
import type { RgbImage } from '../../../src/ml/image/types';
import { measureMorphology, segmentCell } from '../../../src/ml/features/morphology';
import { Rng } from '../../../src/ml/rng';
import { sampleImages } from '../../helpers/sample';
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

/**
 * The texture the straightforward way, one loop per statistic over every pixel of the box, as
 * texture.ts computed it before its loops were fused: the demo model's fusion stack and norms were
 * fitted on these values, so the fast version must give them to the last bit.
 */
function referenceTexture(img: RgbImage, mask: Uint8Array): Texture | null {
  const { width, height, data } = img;
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let p = 0; p < mask.length; p++) {
    if (!mask[p]) continue;
    const x = p % width;
    const y = (p - x) / width;
    [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const luma = new Float64Array(bw * bh);
  const inside = new Uint8Array(bw * bh);
  const histogram = new Float64Array(256);
  let count = 0;
  let sum = 0;
  for (let y = 0; y < bh; y++)
    for (let x = 0; x < bw; x++) {
      const p = (y + y0) * width + x + x0;
      const value = 0.299 * data[p * 3] + 0.587 * data[p * 3 + 1] + 0.114 * data[p * 3 + 2];
      luma[y * bw + x] = value;
      if (!mask[p]) continue;
      inside[y * bw + x] = 1;
      histogram[Math.min(255, Math.floor(value + 0.5))]++;
      count++;
      sum += value;
    }
  if (count < 64) return null;
  const percentile = (share: number) => {
    const rank = Math.min(count - 1, Math.floor(share * count));
    let seen = 0;
    for (let v = 0; v < 256; v++) if ((seen += histogram[v]) > rank) return v;
    return 255;
  };
  const [low, high] = [percentile(0.01), percentile(0.99)];
  const step = 16 / (high - low + 1e-9);
  const levels = Array.from(luma, (v) => Math.max(0, Math.min(15, Math.floor((v - low) * step))));
  const matrix = new Float64Array(256);
  let total = 0;
  for (const [dx, dy] of [
    [2, 0],
    [0, 2],
    [2, 2],
    [2, -2],
  ])
    for (let y = Math.max(0, -dy); y < Math.min(bh, bh - dy); y++)
      for (let x = 0; x < bw - dx; x++) {
        const [q, r] = [y * bw + x, (y + dy) * bw + x + dx];
        if (!inside[q] || !inside[r]) continue;
        matrix[levels[q] * 16 + levels[r]]++;
        matrix[levels[r] * 16 + levels[q]]++;
        total += 2;
      }
  let mean = 0;
  for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) mean += (i * matrix[i * 16 + j]) / total;
  const glcm = { contrast: 0, homogeneity: 0, energy: 0, entropy: 0, variance: 0, covariance: 0 };
  for (let i = 0; i < 16; i++)
    for (let j = 0; j < 16; j++) {
      const v = matrix[i * 16 + j] / total;
      if (v === 0) continue;
      glcm.contrast += (i - j) * (i - j) * v;
      glcm.homogeneity += v / (1 + (i - j) * (i - j));
      glcm.energy += v * v;
      glcm.entropy -= v * Math.log(v);
      glcm.variance += (i - mean) * (i - mean) * v;
      glcm.covariance += (i - mean) * (j - mean) * v;
    }
  let [uniform, flat, counted] = [0, 0, 0];
  const around = [
    [-2, 0],
    [-2, -2],
    [0, -2],
    [2, -2],
    [2, 0],
    [2, 2],
    [0, 2],
    [-2, 2],
  ];
  for (let y = 2; y < bh - 2; y++)
    for (let x = 2; x < bw - 2; x++) {
      if (!inside[y * bw + x]) continue;
      const bits = around.map(([dx, dy]) => (luma[(y + dy) * bw + x + dx] >= luma[y * bw + x] ? 1 : 0));
      const transitions = bits.filter((bit, k) => bit !== bits[(k + 7) % 8]).length;
      const ones = bits.filter((bit) => bit === 1).length;
      counted++;
      if (transitions <= 2) uniform++;
      if (transitions <= 2 && (ones === 0 || ones === 8)) flat++;
    }
  let [dark, best, threshold, below, belowSum] = [0, -1, 0, 0, 0];
  for (let v = 0; v < 256; v++) {
    if (v < sum / count - 15) dark += histogram[v];
    below += histogram[v];
    belowSum += v * histogram[v];
    const above = count - below;
    if (below === 0 || above === 0) continue;
    const gap = belowSum / below - (sum - belowSum) / above;
    if (below * above * gap * gap > best) [best, threshold] = [below * above * gap * gap, v];
  }
  let nucleus = 0;
  for (let v = 0; v <= threshold; v++) nucleus += histogram[v];
  return {
    glcmContrast: total ? glcm.contrast : NaN,
    glcmHomogeneity: total ? glcm.homogeneity : NaN,
    glcmEnergy: total ? glcm.energy : NaN,
    glcmEntropy: total ? glcm.entropy : NaN,
    glcmCorrelation: total ? (glcm.variance > 1e-12 ? glcm.covariance / glcm.variance : 0) : NaN,
    lbpUniform: counted ? uniform / counted : NaN,
    lbpFlat: counted ? flat / counted : NaN,
    lumaSpread: percentile(0.9) - percentile(0.1),
    darkShare: dark / count,
    nucleusShare: nucleus / count,
  };
}

describe('chromatin texture against the straightforward loops', () => {
  it('gives the same values to the last bit on real cells', async () => {
    // Every fifth of the 63 sample cells: the reference is slow inside Jest's sandbox.
    for (const sample of sampleImages().filter((_, k) => k % 5 === 0)) {
      const img = await decodeImage(sample.bytes);
      const mask = segmentCell(img);
      expect(measureTexture(img, mask)).toStrictEqual(referenceTexture(img, mask));
    }
  });

  it('gives the same values on random images and ragged masks, boxes down to a few pixels', () => {
    const rng = new Rng(7);
    let measured = 0;
    for (let trial = 0; trial < 150; trial++) {
      const width = 3 + Math.floor(rng.next() * 40);
      const height = 3 + Math.floor(rng.next() * 40);
      const data = Uint8Array.from({ length: width * height * 3 }, () => Math.floor(rng.next() * 256));
      const density = rng.next();
      const mask = Uint8Array.from({ length: width * height }, () => (rng.next() < density ? 1 : 0));
      const expected = referenceTexture({ width, height, data }, mask);
      const texture = measureTexture({ width, height, data }, mask);
      if (expected) measured++;
      if (expected) expect(texture).toStrictEqual(expected);
      else for (const name of TEXTURE_FEATURES) expect(texture[name]).toBeNaN();
    }
    expect(measured).toBeGreaterThan(50);
  });

  it('gives the same values for a box too big for the kernel instance it keeps', () => {
    // 1,200 x 1,200 pixels of box take about 19 MB of the kernel's memory, above the 16 MiB it keeps: the
    // call runs on an instance of its own. A few hundred cell pixels, spread from corner to corner.
    const rng = new Rng(11);
    const width = 1200;
    const data = new Uint8Array(width * width * 3);
    for (let i = 0; i < data.length; i++) data[i] = Math.imul(i + 1, 2654435761) >>> 24;
    const mask = new Uint8Array(width * width);
    mask[0] = 1;
    mask[mask.length - 1] = 1;
    for (let k = 0; k < 400; k++) mask[Math.floor(rng.next() * mask.length)] = 1;
    const big = { width, height: width, data };
    expect(measureTexture(big, mask)).toStrictEqual(referenceTexture(big, mask));
    // And the kept instance still answers as before.
    const small = { width: 40, height: 40, data: data.subarray(0, 40 * 40 * 3) };
    const round = Uint8Array.from(
      { length: 1600 },
      (_, p) => +(((p % 40) - 20) ** 2 + (((p / 40) | 0) - 20) ** 2 < 300),
    );
    expect(measureTexture(small, round)).toStrictEqual(referenceTexture(small, round));
  });
});
