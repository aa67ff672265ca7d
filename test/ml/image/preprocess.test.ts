import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LymphoscopeError } from '../../../src/errors';
import { decodeImage } from '../../../src/ml/image/decode';
import {
  augment,
  dihedral,
  dihedralVariants,
  otherDihedralViews,
  resizeToModelInput,
  toModelInput,
} from '../../../src/ml/image/preprocess';
import type { RgbImage } from '../../../src/ml/image/types';

const CELL = path.join(__dirname, '../../../data/cnmc-sample/all/UID_11_1_1_all.bmp');

/** A size x size x 3 image whose every value is distinct, so any misplaced pixel shows. */
function numbered(size: number): Float32Array {
  return Float32Array.from({ length: size * size * 3 }, (_, i) => i / (size * size * 3));
}

const at = (pixels: Float32Array, size: number, x: number, y: number) =>
  Array.from(pixels.subarray((y * size + x) * 3, (y * size + x) * 3 + 3));

/** A fixed sequence standing in for the training RNG. */
const sequence = (...values: number[]) => {
  let i = 0;
  return { next: () => values[i++ % values.length] };
};

describe('toModelInput', () => {
  it('resizes a real cell to inputSize x inputSize x 3 in [0, 1], keeping the black background', async () => {
    const img = await decodeImage(readFileSync(CELL));
    const pixels = await toModelInput(img, 64);
    expect(pixels).toBeInstanceOf(Float32Array);
    expect(pixels).toHaveLength(64 * 64 * 3);
    expect(Math.min(...pixels)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...pixels)).toBeLessThanOrEqual(1);
    expect(Math.max(...at(pixels, 64, 0, 0), ...at(pixels, 64, 63, 63))).toBeLessThan(0.02);
    // The centre pixel is the cell, and matches the mean of the source's central 7x7 patch closely.
    let sum = 0;
    for (let y = 222; y <= 228; y++) for (let x = 222; x <= 228; x++) sum += img.data[(y * 450 + x) * 3 + 2];
    expect(at(pixels, 64, 32, 32)[2]).toBeCloseTo(sum / 49 / 255, 1);
  });

  // These two test the resize itself: their synthetic images have no black background for
  // toModelInput's masking to keep, so they call the resize step directly.
  it('anti-aliases: a one-pixel checkerboard shrinks to flat grey, not to black or white', async () => {
    const size = 200;
    const data = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        data.fill((x + y) % 2 ? 255 : 0, (y * size + x) * 3, (y * size + x) * 3 + 3);
    const pixels = await resizeToModelInput({ width: size, height: size, data }, 32);
    for (const value of pixels.subarray(32 * 3 * 4, 32 * 3 * 28))
      expect(Math.abs(value - 0.5)).toBeLessThan(0.05);
  });

  it('stretches a non-square image to fill the square and passes a same-size image through exactly', async () => {
    const wide: RgbImage = { width: 40, height: 20, data: new Uint8Array(40 * 20 * 3).fill(51) };
    const filled = await resizeToModelInput(wide, 16);
    expect(filled.every((v) => Math.abs(v - 0.2) < 1e-6)).toBe(true);
    const exact: RgbImage = {
      width: 2,
      height: 2,
      data: Uint8Array.from([0, 255, 51, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
    };
    expect(Array.from(await resizeToModelInput(exact, 2))).toEqual(
      Array.from(exact.data, (v) => Math.fround(v / 255)),
    );
  });

  it('refuses an image whose data does not match its size', async () => {
    await expect(toModelInput({ width: 3, height: 3, data: new Uint8Array(5) }, 8)).rejects.toBeInstanceOf(
      LymphoscopeError,
    );
  });
});

describe('dihedral variants', () => {
  const size = 4;
  const image = numbered(size);

  it('rotates clockwise and mirrors as documented', () => {
    const quarter = dihedral(image, size, 1);
    expect(at(quarter, size, 3, 0)).toEqual(at(image, size, 0, 0)); // top-left goes to top-right
    expect(at(quarter, size, 0, 0)).toEqual(at(image, size, 0, 3)); // bottom-left goes to top-left
    const mirrored = dihedral(image, size, 4);
    expect(at(mirrored, size, 3, 1)).toEqual(at(image, size, 0, 1));
  });

  it('gives 8 distinct permutations of the pixels, identity first, closed under composition', () => {
    const variants = dihedralVariants(image, size);
    expect(variants).toHaveLength(8);
    expect(Array.from(variants[0])).toEqual(Array.from(image));
    const keys = variants.map((v) => Array.from(v).join());
    expect(new Set(keys).size).toBe(8);
    const sorted = Array.from(image).sort().join();
    for (const v of variants) expect(Array.from(v).sort().join()).toBe(sorted);
    // The variants of any variant are the same 8 images: the set is the whole group.
    for (const v of variants) {
      expect(new Set(dihedralVariants(v, size).map((w) => Array.from(w).join()))).toEqual(new Set(keys));
    }
  });

  it('turns k quarter turns as k single turns, after the mirror for variants 4-7', () => {
    const turn = (pixels: Float32Array, times: number) => {
      let out = pixels;
      for (let t = 0; t < times; t++) out = dihedral(out, size, 1);
      return Array.from(out);
    };
    const mirrored = dihedral(image, size, 4);
    for (let k = 0; k < 4; k++) {
      expect(Array.from(dihedral(image, size, k))).toEqual(turn(image, k));
      expect(Array.from(dihedral(image, size, 4 + k))).toEqual(turn(mirrored, k));
    }
  });

  it('lays the 7 other views of test-time augmentation out one after the other, variants 1 to 7', () => {
    const views = otherDihedralViews(image, size);
    const expected = dihedralVariants(image, size).slice(1);
    expect(views).toHaveLength(7 * image.length);
    expected.forEach((view, i) =>
      expect(Array.from(views.subarray(i * image.length, (i + 1) * image.length))).toEqual(Array.from(view)),
    );
  });
});

describe('augment', () => {
  const size = 8;
  const image = numbered(size);

  it('with neutral jitter applies exactly the flip/rotation the rng picks', () => {
    // next() = 0.5 gives gain 1 and gamma 1; the first draw picks the variant.
    for (let variant = 0; variant < 8; variant++) {
      const out = augment(image, size, sequence((variant + 0.5) / 8, 0.5, 0.5));
      const expected = dihedral(image, size, variant);
      out.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
    }
  });

  it('is deterministic for a given rng sequence, returns a new array and leaves the input alone', () => {
    const copy = image.slice();
    const a = augment(image, size, sequence(0.3, 0.9, 0.1));
    const b = augment(image, size, sequence(0.3, 0.9, 0.1));
    expect(a).not.toBe(image);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(image)).toEqual(Array.from(copy));
    expect(Array.from(augment(image, size, sequence(0.3, 0.1, 0.9)))).not.toEqual(Array.from(a));
  });

  it('gives every value its gain and gamma exactly, 8-bit values (a table) and others alike', () => {
    // Every 8-bit value k / 255, as resizeToModelInput stores them, and values between them; any order.
    const side = 16;
    const values = Float32Array.from({ length: side * side * 3 }, (_, i) =>
      i < 256 ? ((i * 37) % 256) / 255 : (i - 256) / 500 + 0.001,
    );
    for (const draws of [
      [0.1, 0.999, 0.999],
      [0.7, 0, 0.2],
      [0.4, 0.6, 0],
    ]) {
      const [, gainDraw, gammaDraw] = draws;
      const gain = 1 + 0.1 * (2 * gainDraw - 1);
      const gamma = 1 + 0.1 * (2 * gammaDraw - 1);
      const moved = dihedral(values, side, Math.floor(draws[0] * 8));
      const expected = Float32Array.from(moved, (x) => Math.min(1, x > 0 ? gain * Math.pow(x, gamma) : 0));
      expect(Array.from(augment(values, side, sequence(...draws)))).toEqual(Array.from(expected));
    }
  });

  it('keeps black at 0 and values in [0, 1], and jitters by a small amount', () => {
    const cellOnBlack = Float32Array.from({ length: size * size * 3 }, (_, i) =>
      i % 5 === 0 ? 0 : 0.3 + (i % 7) / 10,
    );
    for (const draws of [
      [0.1, 0.999, 0.999],
      [0.7, 0, 0],
      [0.4, 0.999, 0],
    ]) {
      const out = augment(cellOnBlack, size, sequence(...draws));
      const before = dihedral(cellOnBlack, size, Math.floor(draws[0] * 8));
      out.forEach((v, i) => {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
        if (before[i] === 0) expect(v).toBe(0);
        else expect(Math.abs(v - before[i])).toBeLessThan(0.2);
      });
    }
  });
});
