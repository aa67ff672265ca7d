import { backgroundColour, cellRegion, findForeground } from '../../../src/ml/image/foreground';
import type { RgbImage } from '../../../src/ml/image/types';
import { decodeImage } from '../../../src/ml/image/decode';
import { sampleImages } from '../../helpers/sample';

/**
 * The run-based segmentation against the obvious per-pixel one (flood fills over pixels, which is what
 * morphology.ts and out-of-domain.ts did before they shared findForeground): the same components, the
 * same cell, the same filled holes.
 */
function reference(img: RgbImage) {
  const { width, height, data } = img;
  const n = width * height;
  const [br, bg, bb] = backgroundColour(img);
  const mask = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    const i = p * 3;
    if (Math.abs(data[i] - br) > 8 || Math.abs(data[i + 1] - bg) > 8 || Math.abs(data[i + 2] - bb) > 8)
      mask[p] = 1;
  }
  const label = new Int32Array(n);
  const sizes = [0];
  for (let start = 0; start < n; start++) {
    if (!mask[start] || label[start]) continue;
    const id = sizes.length;
    let size = 0;
    const stack = [start];
    label[start] = id;
    while (stack.length) {
      const p = stack.pop()!;
      size++;
      const x = p % width;
      const y = (p - x) / width;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const q = ny * width + nx;
          if (mask[q] && !label[q]) {
            label[q] = id;
            stack.push(q);
          }
        }
    }
    sizes.push(size);
  }
  let cell = 0;
  for (let id = 1; id < sizes.length; id++) if (sizes[id] > sizes[cell]) cell = id;
  // Holes: background 4-connected to no border pixel.
  const filled = new Uint8Array(n);
  for (let p = 0; p < n; p++) filled[p] = cell > 0 && label[p] === cell ? 1 : 0;
  if (cell > 0) {
    const outside = new Uint8Array(n);
    const stack: number[] = [];
    for (let p = 0; p < n; p++) {
      const x = p % width;
      const y = (p - x) / width;
      if ((x === 0 || y === 0 || x === width - 1 || y === height - 1) && !filled[p]) {
        outside[p] = 1;
        stack.push(p);
      }
    }
    while (stack.length) {
      const p = stack.pop()!;
      const x = p % width;
      for (const q of [x > 0 ? p - 1 : -1, x < width - 1 ? p + 1 : -1, p - width, p + width]) {
        if (q < 0 || q >= n || filled[q] || outside[q]) continue;
        outside[q] = 1;
        stack.push(q);
      }
    }
    for (let p = 0; p < n; p++) filled[p] = outside[p] ? 0 : 1;
  }
  return { mask, sizes: sizes.slice(1).sort((a, b) => a - b), cellSize: sizes[cell], filled };
}

function randomImage(seed: number): RgbImage {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const width = 3 + Math.floor(next() * 40);
  const height = 3 + Math.floor(next() * 40);
  const density = 0.2 + 0.7 * next();
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    if (next() < density) data[p * 3 + Math.floor(next() * 3)] = 9 + Math.floor(next() * 247);
  }
  return { width, height, data };
}

describe('findForeground and cellRegion', () => {
  it('find the components, the cell and its holes that per-pixel flood fills find, on 300 random images', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const img = randomImage(seed);
      const expected = reference(img);
      const fg = findForeground(img);
      expect(Array.from(fg.mask)).toEqual(Array.from(expected.mask));
      const sizes = Array.from(fg.componentSize).filter((_, r) => fg.runComponent[r] === r);
      expect(sizes.sort((a, b) => a - b)).toEqual(expected.sizes);
      expect(fg.cell < 0 ? 0 : fg.componentSize[fg.cell]).toBe(expected.cellSize);
      expect(fg.brightest).toBe(img.data.reduce((a, b) => Math.max(a, b), 0));
      const region = cellRegion(fg);
      expect(Array.from(region.mask)).toEqual(Array.from(expected.filled));
      expect(region.area).toBe(expected.filled.reduce((a, b) => a + b, 0));
    }
  });

  it('joins diagonal neighbours and fills the inside of a ring', () => {
    // 7x7: a ring around three background pixels, and a pixel touching it only diagonally.
    const rows = ['#......', '.####..', '.#..#..', '.#.##..', '.####..', '.......', '.......'];
    const width = 7;
    const data = new Uint8Array(7 * 7 * 3);
    rows.forEach((row, y) =>
      [...row].forEach((c, x) => {
        if (c === '#') data[(y * width + x) * 3] = 200;
      }),
    );
    const fg = findForeground({ width, height: 7, data });
    expect(fg.componentSize[fg.cell]).toBe(14);
    const region = cellRegion(fg);
    // The three background pixels inside the ring (2,2), (3,2) and (2,3) become cell.
    expect(region.area).toBe(17);
    expect(region.mask[2 * width + 2]).toBe(1);
    expect(region.mask[3 * width + 2]).toBe(1);
    expect(region.rowStart[0]).toBe(0);
    expect(region.rowEnd[1]).toBe(5);
  });

  it('finds the mask, runs and counts of a pass pixel by pixel, four black pixels at a time included', async () => {
    // The kernel passes four black pixels at once where black is background. Real cells (83% black
    // canvas), the random images (widths not all multiples of 4, runs ending anywhere in a group of four),
    // the same one byte further on in memory, and the random images on a grey background (no black
    // shortcut), each against the plain per-pixel pass written out here.
    const unaligned = (img: RgbImage): RgbImage => {
      const data = new Uint8Array(img.data.length + 1).subarray(1);
      data.set(img.data);
      return { ...img, data };
    };
    const grey = (img: RgbImage): RgbImage => ({ ...img, data: img.data.map((v) => (v === 0 ? 128 : v)) });
    const images: RgbImage[] = await Promise.all(sampleImages().map((s) => decodeImage(s.bytes)));
    for (let seed = 1; seed <= 100; seed++) images.push(randomImage(seed), grey(randomImage(seed)));
    images.push(...images.slice(0, 20).map(unaligned));
    const { abs, max } = Math;
    for (const img of images) {
      const { width, height, data } = img;
      const [br, bg, bb] = backgroundColour(img);
      const mask = new Uint8Array(width * height);
      const runs: number[] = [];
      let [foreground, clipped, brightest] = [0, 0, 0];
      for (let y = 0; y < height; y++) {
        let open = -1;
        for (let x = 0; x <= width; x++) {
          const i = (y * width + x) * 3;
          const on =
            x < width && (abs(data[i] - br) > 8 || abs(data[i + 1] - bg) > 8 || abs(data[i + 2] - bb) > 8);
          if (x < width) {
            if (data[i] === 255 || data[i + 1] === 255 || data[i + 2] === 255) clipped++;
            brightest = max(brightest, data[i], data[i + 1], data[i + 2]);
          }
          if (on) {
            mask[y * width + x] = 1;
            foreground++;
            if (open < 0) open = x;
          } else if (open >= 0) {
            runs.push(y, open, x);
            open = -1;
          }
        }
      }
      const fg = findForeground(img);
      expect(Buffer.from(fg.mask).equals(Buffer.from(mask))).toBe(true);
      const found = Array.from(fg.runRow).flatMap((row, r) => [row, fg.runStart[r], fg.runEnd[r]]);
      expect(found).toEqual(runs);
      expect([fg.foregroundPixels, fg.clippedPixels, fg.brightest]).toEqual([foreground, clipped, brightest]);
    }
  });

  it('finds every run of an image with more runs than the first room the pass gives them', () => {
    // Inside a black frame, every other column is a vertical line: 99 runs a row, above the 16 a row the
    // pass first makes room for.
    const width = 200;
    const height = 30;
    const data = new Uint8Array(width * height * 3);
    for (let y = 1; y < height - 1; y++)
      for (let x = 1; x < width - 1; x += 2) data[(y * width + x) * 3 + 1] = 200;
    const fg = findForeground({ width, height, data });
    expect(fg.runRow.length).toBe(99 * (height - 2));
    expect(Array.from(fg.runStart.subarray(0, 3))).toEqual([1, 3, 5]);
    expect(Array.from(fg.runEnd.subarray(0, 3))).toEqual([2, 4, 6]);
    expect(fg.foregroundPixels).toBe(99 * (height - 2));
    // Each line is a component of its own; the cell is the first in raster order.
    expect(Array.from(fg.runComponent).filter((root, r) => root === r)).toHaveLength(99);
    expect([fg.cell, fg.componentSize[fg.cell]]).toEqual([0, height - 2]);
  });

  it('has no cell in a blank image', () => {
    const fg = findForeground({ width: 4, height: 3, data: new Uint8Array(36) });
    expect(fg.cell).toBe(-1);
    expect(cellRegion(fg).area).toBe(0);
  });
});
