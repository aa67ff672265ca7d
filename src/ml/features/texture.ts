import { badInput } from '../../errors';
import type { RgbImage } from '../image/types';

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
 * Luma of the box alone, so every loop after it runs over the cell, not the frame; the cell's pixels
 * are those with a grey level (OUTSIDE elsewhere), so no second mask is read. Each pixel loop here is a
 * function of its own: V8 optimises a long loop while it runs, and code after it that has not run yet
 * sent that optimised code back to the interpreter on a process's first cells (docs/PERFORMANCE.md,
 * "a container's first analyses").
 */
function boxLuma(data: Uint8Array, width: number, mask: Uint8Array, box: NonNullable<CellBox>) {
  const bw = box.x1 - box.x0 + 1;
  const bh = box.y1 - box.y0 + 1;
  const luma = new Float64Array(bw * bh);
  const levels = new Uint8Array(bw * bh).fill(OUTSIDE);
  const histogram = new Int32Array(256);
  // Written at the end of every row, inside the loop (see cellSums in morphology.ts).
  const result = { bw, bh, luma, levels, histogram, count: 0, sum: 0 };
  let count = 0;
  let sum = 0;
  for (let y = 0, q = 0; y < bh; y++) {
    for (let x = 0, p = (y + box.y0) * width + box.x0, i = p * 3; x < bw; x++, p++, q++, i += 3) {
      const value = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
      luma[q] = value;
      if (!mask[p]) continue;
      levels[q] = 0;
      // value is in [0, 255]: truncation of value + 0.5 is Math.round, never above 255.
      histogram[(value + 0.5) | 0]++;
      count++;
      sum += value;
    }
    result.count = count;
    result.sum = sum;
  }
  return result;
}

/** The cell's grey levels: its luma between the low and high percentiles, in GRAY_LEVELS steps. */
function quantise(luma: Float64Array, levels: Uint8Array, low: number, high: number): void {
  const step = GRAY_LEVELS / (high - low + 1e-9);
  for (let q = 0; q < levels.length; q++) {
    if (levels[q] === OUTSIDE) continue;
    // floor, clamped to [0, GRAY_LEVELS - 1]; truncation is floor for the non-negative values it sees.
    const level = (luma[q] - low) * step;
    levels[q] = level < 0 ? 0 : level >= GRAY_LEVELS - 1 ? GRAY_LEVELS - 1 : level | 0;
  }
}

/**
 * Measures the texture of the cell in `img` under `mask` (segmentCell's, 1 inside). Only the mask's
 * bounding box is read; `box` is that box when the caller already knows it (measureMorphology does). NaN features (JSON null) when the cell has fewer than MIN_PIXELS pixels.
 */
export function measureTexture(img: RgbImage, mask: Uint8Array, knownBox?: CellBox): Texture {
  const { width, height, data } = img;
  if (mask.length !== width * height || data.length !== width * height * 3)
    throw badInput(`Expected a ${width}x${height} RGB image and mask.`);
  const box = knownBox === undefined ? boundingBox(mask, width, height) : knownBox;
  if (!box) return { ...NO_TEXTURE };
  const { bw, bh, luma, levels, histogram, count, sum } = boxLuma(data, width, mask, box);
  if (count < MIN_PIXELS) return { ...NO_TEXTURE };

  const percentile = (share: number) => {
    const rank = min(count - 1, floor(share * count));
    let seen = 0;
    for (let v = 0; v < 256; v++) {
      seen += histogram[v];
      if (seen > rank) return v;
    }
    return 255;
  };
  quantise(luma, levels, percentile(0.01), percentile(0.99));

  return {
    ...cooccurrence(levels, bw, bh),
    ...localBinaryPatterns(luma, levels, bw, bh),
    ...chromatin(histogram, count, sum, percentile),
  };
}

/** The grey level of a box pixel outside the cell. */
const OUTSIDE = 255;

/** Pairs (a, b) of grey levels at distance GLCM_DISTANCE, counted once each, and how many. */
function countPairs(levels: Uint8Array, bw: number, bh: number) {
  const G = GRAY_LEVELS;
  const d = GLCM_DISTANCE;
  const pairs = new Int32Array(G * G);
  // Written at the end of every row, inside the loop (see cellSums in morphology.ts).
  const result = { pairs, counted: 0 };
  let counted = 0;
  const down = d * bw;
  for (let y = 0; y < bh; y++) {
    const hasDown = y < bh - d;
    const hasUp = y >= d;
    for (let x = 0, q = y * bw; x < bw; x++, q++) {
      const a = levels[q];
      if (a === OUTSIDE) continue;
      const row = a * G;
      let b: number;
      if (hasDown && (b = levels[q + down]) !== OUTSIDE) {
        pairs[row + b]++;
        counted++;
      }
      if (x >= bw - d) continue;
      if ((b = levels[q + d]) !== OUTSIDE) {
        pairs[row + b]++;
        counted++;
      }
      if (hasDown && (b = levels[q + down + d]) !== OUTSIDE) {
        pairs[row + b]++;
        counted++;
      }
      if (hasUp && (b = levels[q - down + d]) !== OUTSIDE) {
        pairs[row + b]++;
        counted++;
      }
    }
    result.counted = counted;
  }
  return result;
}

/**
 * Haralick's statistics of the symmetric co-occurrence matrix pooled over 0, 45, 90 and 135 degrees at
 * distance GLCM_DISTANCE, from one pass over the box: each cell pixel with its neighbours right, down,
 * down-right and up-right. The counts are integers, so the order they are added in changes nothing.
 */
function cooccurrence(levels: Uint8Array, bw: number, bh: number) {
  const G = GRAY_LEVELS;
  const { pairs, counted } = countPairs(levels, bw, bh);
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

function localBinaryPatterns(luma: Float64Array, levels: Uint8Array, bw: number, bh: number) {
  const r = LBP_RADIUS;
  // The 8 neighbours on the square of radius r, in order around the circle.
  const o0 = -r;
  const o1 = -r * bw - r;
  const o2 = -r * bw;
  const o3 = -r * bw + r;
  const o4 = r;
  const o5 = r * bw + r;
  const o6 = r * bw;
  const o7 = r * bw - r;
  // Written at the end of every row, inside the loop (see cellSums in morphology.ts); 0 / 0 is NaN, as for a
  // cell with no pixel to count.
  const shares = { lbpUniform: NaN, lbpFlat: NaN };
  let uniform = 0;
  let flat = 0;
  let counted = 0;
  for (let y = r; y < bh - r; y++) {
    for (let x = r, q = y * bw + r; x < bw - r; x++, q++) {
      if (levels[q] === OUTSIDE) continue;
      const centre = luma[q];
      // +(a >= b) is 0 or 1 without a branch: the comparisons are as random as the texture, and branches
      // on them were mispredicted often enough to take 1.6x the time (this loop alone on 30 sample cells:
      // 1.19 against 0.72 ms).
      const pattern =
        +(luma[q + o0] >= centre) |
        (+(luma[q + o1] >= centre) << 1) |
        (+(luma[q + o2] >= centre) << 2) |
        (+(luma[q + o3] >= centre) << 3) |
        (+(luma[q + o4] >= centre) << 4) |
        (+(luma[q + o5] >= centre) << 5) |
        (+(luma[q + o6] >= centre) << 6) |
        (+(luma[q + o7] >= centre) << 7);
      const kind = LBP_CLASS[pattern];
      counted++;
      if (kind > 0) {
        uniform++;
        if (kind === 2) flat++;
      }
    }
    shares.lbpUniform = uniform / counted;
    shares.lbpFlat = flat / counted;
  }
  return shares;
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
