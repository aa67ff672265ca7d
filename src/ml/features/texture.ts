import { badInput } from '../../errors';
import type { RgbImage } from '../image/types';
import { MemoryLayout, wasmKernel } from '../wasm/kernel';
import { TEXTURE_WASM } from '../wasm/kernels.generated';

// Global lookups are slow inside Jest's sandbox: read Math's functions once, outside the pixel loops.
const { floor, log, min } = Math;

/**
 * Chromatin texture of the cell, read inside its mask on Rec. 601 luma: what a hematologist calls fine,
 * open chromatin (blasts) against coarse, clumped chromatin (mature lymphocytes). Every feature is
 * invariant to the stain's brightness and contrast: the luma is first mapped to GRAY_LEVELS levels
 * between the cell's own 1st and 99th percentiles.
 *
 * - glcm*: Haralick's statistics of the grey-level co-occurrence matrix at distance GLCM_DISTANCE,
 *   symmetric, pooled over 0, 45, 90 and 135 degrees;
 * - lbp*: local binary patterns on 8 neighbours at radius LBP_RADIUS: the share of uniform patterns
 *   (edges, spots, flats: at most two 0/1 transitions around the circle) and of flat ones (all
 *   neighbours on one side of the centre);
 * - lumaSpread: the 90th minus the 10th percentile of luma, on the 0-255 scale;
 * - darkShare: the share of the cell darker than its mean by more than DARK_MARGIN (clumps);
 * - nucleusShare: the share darker than the Otsu threshold of the cell's luma (nucleus against
 *   cytoplasm; a blast's nucleus fills more of the cell).
 */
export interface Texture {
  glcmContrast: number;
  glcmHomogeneity: number;
  glcmEnergy: number;
  glcmEntropy: number;
  glcmCorrelation: number;
  lbpUniform: number;
  lbpFlat: number;
  lumaSpread: number;
  darkShare: number;
  nucleusShare: number;
}

export const TEXTURE_FEATURES = [
  'glcmContrast',
  'glcmHomogeneity',
  'glcmEnergy',
  'glcmEntropy',
  'glcmCorrelation',
  'lbpUniform',
  'lbpFlat',
  'lumaSpread',
  'darkShare',
  'nucleusShare',
] as const satisfies ReadonlyArray<keyof Texture>;
export type TextureFeature = (typeof TEXTURE_FEATURES)[number];

const GRAY_LEVELS = 16;
const GLCM_DISTANCE = 2;
const LBP_RADIUS = 2;
const DARK_MARGIN = 15;
/** Fewer cell pixels than this and there is no texture to speak of: every feature is NaN. */
const MIN_PIXELS = 64;

const NO_TEXTURE: Texture = Object.freeze({
  glcmContrast: NaN,
  glcmHomogeneity: NaN,
  glcmEnergy: NaN,
  glcmEntropy: NaN,
  glcmCorrelation: NaN,
  lbpUniform: NaN,
  lbpFlat: NaN,
  lumaSpread: NaN,
  darkShare: NaN,
  nucleusShare: NaN,
});

/** A cell's bounding box, inclusive; null when there is no cell. */
export type CellBox = { x0: number; y0: number; x1: number; y1: number } | null;

/** The box holding every masked pixel, or null when the mask is empty. */
function boundingBox(mask: Uint8Array, width: number, height: number): CellBox {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0, p = 0; y < height; y++) {
    for (let x = 0; x < width; x++, p++) {
      if (!mask[p]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  return x1 < 0 ? null : { x0, y0, x1, y1 };
}

/**
 * For each of the 256 patterns of 8 neighbour bits (bit k: neighbour k at least the centre, in order
 * around the circle), 2 when it is flat (all bits alike), 1 when it is uniform (at most two 0/1
 * transitions around the circle), 0 otherwise.
 */
const LBP_CLASS = Uint8Array.from({ length: 256 }, (_, pattern) => {
  let transitions = 0;
  let previous = (pattern >> 7) & 1;
  for (let k = 0; k < 8; k++) {
    const bit = (pattern >> k) & 1;
    if (bit !== previous) transitions++;
    previous = bit;
  }
  if (transitions > 2) return 0;
  return pattern === 0 || pattern === 255 ? 2 : 1;
});

/** The texture kernel's functions (src/ml/wasm/texture.wat); pointers are byte offsets in its memory. */
interface TextureFunctions {
  boxLuma(
    data: number,
    mask: number,
    width: number,
    x0: number,
    bw: number,
    bh: number,
    luma: number,
    levels: number,
    histogram: number,
    sumAt: number,
  ): number;
  quantise(luma: number, levels: number, n: number, low: number, step: number): void;
  countPairs(levels: number, bw: number, bh: number, distance: number, pairs: number): void;
  localBinaryPatterns(
    luma: number,
    levels: number,
    bw: number,
    bh: number,
    radius: number,
    classes: number,
    out: number,
  ): void;
}

/**
 * The texture kernel, the local binary patterns' classes at 0. A C-NMC cell needs about 1 MB of its memory
 * (the box's rows, and 9 bytes a box pixel); a cell filling an image of the API's largest side would
 * need 200 MB, which is not kept.
 */
const textureKernel = wasmKernel<TextureFunctions>(TEXTURE_WASM, {
  retainBytes: 16 << 20,
  init: (memory) => new Uint8Array(memory.buffer, 0, 256).set(LBP_CLASS),
});

/**
 * The pixel loops of the texture, in the kernel: the box's luma, the cell's grey levels between its
 * luma's low and high percentiles, the co-occurrence pairs and the local binary patterns. Every loop is
 * the JavaScript one it replaced, in the same order, so every feature is the one that loop gave (the
 * tests compare them with straightforward loops to the last bit); on the sample cells they take about
 * half the time (docs/PERFORMANCE.md, "The analysis of one cell, fourth pass").
 */
function textureLoops(data: Uint8Array, width: number, mask: Uint8Array, box: NonNullable<CellBox>) {
  const bw = box.x1 - box.x0 + 1;
  const bh = box.y1 - box.y0 + 1;
  const first = box.y0 * width;
  const pixels = bh * width;
  const layout = new MemoryLayout(256);
  const at = {
    data: layout.place(pixels * 3),
    mask: layout.place(pixels),
    luma: layout.place(bw * bh * 8),
    levels: layout.place(bw * bh),
    histogram: layout.place(256 * 4),
    pairs: layout.place(GRAY_LEVELS * 256 * 4),
    results: layout.place(16),
  };
  const { memory, functions } = textureKernel(layout.end);
  const heap = memory.buffer;
  new Uint8Array(heap, at.data, pixels * 3).set(data.subarray(first * 3, (first + pixels) * 3));
  new Uint8Array(heap, at.mask, pixels).set(mask.subarray(first, first + pixels));
  new Int32Array(heap, at.histogram, 256).fill(0);
  new Int32Array(heap, at.pairs, GRAY_LEVELS * 256).fill(0);
  // prettier-ignore
  const count = functions.boxLuma(
    at.data, at.mask, width, box.x0, bw, bh, at.luma, at.levels, at.histogram, at.results,
  );
  const histogram = new Int32Array(heap, at.histogram, 256).slice();
  const sum = new Float64Array(heap, at.results, 1)[0];
  const percentile = (share: number) => {
    const rank = min(count - 1, floor(share * count));
    let seen = 0;
    for (let v = 0; v < 256; v++) {
      seen += histogram[v];
      if (seen > rank) return v;
    }
    return 255;
  };
  if (count < MIN_PIXELS) return null;

  const low = percentile(0.01);
  functions.quantise(at.luma, at.levels, bw * bh, low, GRAY_LEVELS / (percentile(0.99) - low + 1e-9));
  functions.countPairs(at.levels, bw, bh, GLCM_DISTANCE, at.pairs);
  // Row a of the kernel's pairs holds the neighbours of level a; its columns 0..15 are those in the cell.
  const kernelPairs = new Int32Array(heap, at.pairs, GRAY_LEVELS * 256);
  const pairs = new Int32Array(GRAY_LEVELS * GRAY_LEVELS);
  let counted = 0;
  for (let a = 0; a < GRAY_LEVELS; a++) {
    for (let b = 0; b < GRAY_LEVELS; b++) {
      pairs[a * GRAY_LEVELS + b] = kernelPairs[a * 256 + b];
      counted += kernelPairs[a * 256 + b];
    }
  }
  functions.localBinaryPatterns(at.luma, at.levels, bw, bh, LBP_RADIUS, 0, at.results);
  const [uniform, flat, classed] = new Int32Array(heap, at.results, 3);
  // 0 / 0 is NaN, as for a cell with no pixel to class.
  return {
    count,
    histogram,
    sum,
    percentile,
    pairs,
    counted,
    lbpUniform: uniform / classed,
    lbpFlat: flat / classed,
  };
}

/**
 * Measures the texture of the cell in `img` under `mask` (segmentCell's, 1 inside). Only the mask's
 * bounding box is read; `box` is that box when the caller already knows it (measureMorphology does). NaN
 * features (JSON null) when the cell has fewer than MIN_PIXELS pixels.
 */
export function measureTexture(img: RgbImage, mask: Uint8Array, knownBox?: CellBox): Texture {
  const { width, height, data } = img;
  if (mask.length !== width * height || data.length !== width * height * 3)
    throw badInput(`Expected a ${width}x${height} RGB image and mask.`);
  const box = knownBox === undefined ? boundingBox(mask, width, height) : knownBox;
  if (!box) return { ...NO_TEXTURE };
  const loops = textureLoops(data, width, mask, box);
  if (!loops) return { ...NO_TEXTURE };
  return {
    ...cooccurrence(loops.pairs, loops.counted),
    lbpUniform: loops.lbpUniform,
    lbpFlat: loops.lbpFlat,
    ...chromatin(loops.histogram, loops.count, loops.sum, loops.percentile),
  };
}

/**
 * Haralick's statistics of the symmetric co-occurrence matrix pooled over 0, 45, 90 and 135 degrees at
 * distance GLCM_DISTANCE, from the pairs the kernel counted in one pass over the box: each cell pixel with
 * its neighbours right, down, down-right and up-right. The counts are integers, so the order they are added
 * in changes nothing.
 */
function cooccurrence(pairs: Int32Array, counted: number) {
  const G = GRAY_LEVELS;
  const total = 2 * counted;
  const matrix = new Float64Array(G * G);
  for (let i = 0; i < G; i++)
    for (let j = 0; j < G; j++) matrix[i * G + j] = pairs[i * G + j] + pairs[j * G + i];
  if (total === 0)
    return {
      glcmContrast: NaN,
      glcmHomogeneity: NaN,
      glcmEnergy: NaN,
      glcmEntropy: NaN,
      glcmCorrelation: NaN,
    };
  let mean = 0;
  for (let i = 0; i < G; i++) for (let j = 0; j < G; j++) mean += (i * matrix[i * G + j]) / total;
  let contrast = 0;
  let homogeneity = 0;
  let energy = 0;
  let entropy = 0;
  let variance = 0;
  let covariance = 0;
  for (let i = 0; i < G; i++) {
    for (let j = 0; j < G; j++) {
      const v = matrix[i * G + j] / total;
      if (v === 0) continue;
      const diff = (i - j) * (i - j);
      contrast += diff * v;
      homogeneity += v / (1 + diff);
      energy += v * v;
      entropy -= v * log(v);
      variance += (i - mean) * (i - mean) * v;
      covariance += (i - mean) * (j - mean) * v;
    }
  }
  return {
    glcmContrast: contrast,
    glcmHomogeneity: homogeneity,
    glcmEnergy: energy,
    glcmEntropy: entropy,
    // The matrix is symmetric, so both marginals share one mean and variance.
    glcmCorrelation: variance > 1e-12 ? covariance / variance : 0,
  };
}

function chromatin(histogram: Int32Array, count: number, sum: number, percentile: (share: number) => number) {
  const mean = sum / count;
  let dark = 0;
  // Otsu's threshold on the cell's luma histogram: the split maximising the between-class variance.
  let best = -1;
  let threshold = 0;
  let below = 0;
  let belowSum = 0;
  for (let v = 0; v < 256; v++) {
    const n = histogram[v];
    if (v < mean - DARK_MARGIN) dark += n;
    below += n;
    belowSum += v * n;
    const above = count - below;
    if (below === 0 || above === 0) continue;
    const gap = belowSum / below - (sum - belowSum) / above;
    const between = below * above * gap * gap;
    if (between > best) {
      best = between;
      threshold = v;
    }
  }
  let nucleus = 0;
  for (let v = 0; v <= threshold; v++) nucleus += histogram[v];
  return {
    lumaSpread: percentile(0.9) - percentile(0.1),
    darkShare: dark / count,
    nucleusShare: nucleus / count,
  };
}

/** The features in TEXTURE_FEATURES order. */
export function textureVector(t: Texture): number[] {
  return TEXTURE_FEATURES.map((name) => t[name]);
}
