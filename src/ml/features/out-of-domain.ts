import { badInput } from '../../errors';
import type { RgbImage } from '../image/types';
import { findForeground, type Foreground } from '../image/foreground';
import { kFoldBySubject, type SplitItem } from '../data/splits';

/**
 * How far an image lies from the cells a model was trained on. A network answers every input with a
 * probability, and on a cell from another lab (another stain, a grey background, another
 * magnification), a smear crop with several cells or a photo of something else that probability
 * means little: such an image must go to a person with the reason OUT_OF_DOMAIN, not be called
 * NORMAL with confidence.
 *
 * The score is built from cheap statistics of the decoded image (one pass to label the foreground,
 * one over the cell), standardised robustly against the training cells (median and MAD) and combined
 * by a Mahalanobis distance with shrinkage, since a few dozen to a few thousand cells cannot pin down
 * a full covariance of 11 features. Its threshold is not chosen here: training fits it on
 * out-of-fold scores (cells of subjects the domain model never saw) with fitDomainThreshold.
 *
 * What it does not see (figures in docs/ML.md, "Out-of-domain detection"): a change of magnification
 * by 0.8 or 1.25 stays inside the spread of real cell sizes, and C-NMC's texture has no characteristic
 * scale to tell it by; and sharpness was left out because JPEG re-encoding of an in-domain cell moves it as
 * much as a 2-pixel defocus does, so it raised false alarms without catching blur.
 */

/** The statistics domainFeatures returns, in order. Changing them changes every card's model. */
export const DOMAIN_FEATURES = [
  // The frame: C-NMC cells are masked onto pure black.
  'backgroundLevel', // brightest channel of the border's median colour (C-NMC: 0)
  'borderForeground', // share of border pixels that are not background (cell cut by the frame, uneven background)
  // How much is there, and in how many pieces: magnification, blank fields, several cells.
  'foregroundShare', // share of the image that is not background
  'logCellArea', // ln(1 + pixels of the largest foreground component): magnification
  'cellShareOfForeground', // largest component / all foreground: 1 for one cell
  'components', // foreground components of at least MIN_COMPONENT_PX and 2% of the largest
  // The stain, inside the largest component.
  'lumaMean',
  'chromaRed', // mean R / (R + G + B)
  'chromaBlue', // mean B / (R + G + B)
  'saturationMean', // HSV saturation, (max - min) / max
  // Blown highlights: photos and bright fields clip, a masked cell never does.
  'clippedShare', // share of pixels with some channel at 255
] as const;
export type DomainFeature = (typeof DOMAIN_FEATURES)[number];

/**
 * The smallest robust scale per feature, in its own unit. C-NMC is so uniform in some statistics (its
 * background is exactly 0, its border never cell) that their MAD is 0, and any JPEG ripple would then
 * be infinitely far: these floors say how much variation is still "the same kind of image".
 */
const SCALE_FLOOR: Readonly<Record<DomainFeature, number>> = {
  backgroundLevel: 3,
  borderForeground: 0.01,
  foregroundShare: 0.01,
  logCellArea: 0.05,
  cellShareOfForeground: 0.01,
  components: 0.3,
  lumaMean: 2,
  chromaRed: 0.005,
  chromaBlue: 0.005,
  saturationMean: 0.01,
  clippedShare: 0.002,
};

// Read once: the per-pixel loops below call these 200,000 times an image, and inside a sandboxed global
// (Jest's vm context) every lookup of the global `Math` goes through an interceptor, about 200 times slower.
const { max, min } = Math;
/** Foreground components smaller than this (in pixels) are specks, not cells. */
const MIN_COMPONENT_PX = 40;

/**
 * The DOMAIN_FEATURES of one decoded image, always finite: an image with no foreground gets 0 for the
 * statistics of the cell it lacks, which is far from any real cell. Linear in the pixel count (a few ms
 * for 450x450); never throws for a well-formed RgbImage.
 */
export function domainFeatures(image: RgbImage, fg: Foreground = findForeground(image)): Float64Array {
  const { width, height, data } = image;
  const n = width * height;
  if (width < 1 || height < 1 || data.length !== n * 3)
    throw badInput(`Expected an RGB image of ${width}x${height}; got ${data.length} bytes.`);
  if (fg.width !== width || fg.height !== height)
    throw new Error('The foreground passed to domainFeatures belongs to another image.');
  const [br, bg, bb] = fg.background;
  const { mask, foregroundPixels: foreground, clippedPixels: clipped } = fg;
  let borderPixels = 0;
  let borderForeground = 0;
  const border = (p: number) => {
    borderPixels++;
    borderForeground += mask[p];
  };
  for (let x = 0; x < width; x++) {
    border(x);
    if (height > 1) border((height - 1) * width + x);
  }
  for (let y = 1; y < height - 1; y++) {
    border(y * width);
    if (width > 1) border(y * width + width - 1);
  }

  // 8-connected components of the foreground (findForeground): sizes, and which one is the cell.
  const { cell, componentSize, runComponent } = fg;
  const cellArea = cell >= 0 ? componentSize[cell] : 0;
  const minComponent = max(MIN_COMPONENT_PX, 0.02 * cellArea);
  let components = 0;
  for (let r = 0; r < runComponent.length; r++)
    if (runComponent[r] === r && componentSize[r] >= minComponent) components++;

  const { sumLuma, sumRed, sumBlue, sumSaturation } = cellColourSums(data, width, fg);
  const mean = (sum: number) => (cellArea > 0 ? sum / cellArea : 0);

  const values: Record<DomainFeature, number> = {
    backgroundLevel: Math.max(br, bg, bb),
    borderForeground: borderPixels > 0 ? borderForeground / borderPixels : 0,
    foregroundShare: foreground / n,
    logCellArea: Math.log1p(cellArea),
    cellShareOfForeground: foreground > 0 ? cellArea / foreground : 0,
    components,
    lumaMean: mean(sumLuma),
    chromaRed: mean(sumRed),
    chromaBlue: mean(sumBlue),
    saturationMean: mean(sumSaturation),
    clippedShare: clipped / n,
  };
  return Float64Array.from(DOMAIN_FEATURES, (name) => values[name]);
}

/**
 * Colour sums inside the cell, its runs in raster order. A function of its own, and its sums leave through
 * an object written after every run, inside the loop: V8 optimises the loop while it runs (on-stack
 * replacement), and code after the loop that needed type feedback it had not yet seen (the calls in
 * domainFeatures, then the object a return builds) sent the optimised code back to the interpreter on
 * 17 to 47 of 127 calls (`node --trace-deopt`, the 63 sample cells twice, Node 20 and 22).
 */
function cellColourSums(data: Uint8Array, width: number, fg: Foreground) {
  const { cell, runComponent, runRow, runStart, runEnd } = fg;
  const sums = { sumLuma: 0, sumRed: 0, sumBlue: 0, sumSaturation: 0 };
  let sumLuma = 0;
  let sumRed = 0;
  let sumBlue = 0;
  let sumSaturation = 0;
  for (let run = max(cell, 0); cell >= 0 && run < runComponent.length; run++) {
    if (runComponent[run] !== cell) continue;
    const row = runRow[run] * width;
    for (let i = (row + runStart[run]) * 3, end = (row + runEnd[run]) * 3; i < end; i += 3) {
      const r = data[i];
      const g = data[i + 1];
      const b = data[i + 2];
      sumLuma += 0.299 * r + 0.587 * g + 0.114 * b;
      const total = r + g + b;
      sumRed += total > 0 ? r / total : 1 / 3;
      sumBlue += total > 0 ? b / total : 1 / 3;
      const brightest = max(r, g, b);
      sumSaturation += brightest > 0 ? (brightest - min(r, g, b)) / brightest : 0;
    }
    sums.sumLuma = sumLuma;
    sums.sumRed = sumRed;
    sums.sumBlue = sumBlue;
    sums.sumSaturation = sumSaturation;
  }
  return sums;
}

/**
 * What a model card stores about its training images' domain: plain numbers, JSON-serialisable.
 * Scores: z = (x - center) / scale per feature, then sqrt(z' P z) with P the inverse of the shrunk
 * correlation of the training z.
 */
export interface DomainModel {
  /** DOMAIN_FEATURES at fitting time: a card whose list differs from the code's cannot be scored. */
  features: string[];
  /** Per-feature median of the training images. */
  center: number[];
  /** Per-feature 1.4826 * MAD, at least the feature's floor. */
  scale: number[];
  /** Row-major d x d inverse of the shrunk covariance of the (clipped) training z. */
  precision: number[];
  /** Weight of the identity in the shrunk covariance, in [0, 1]. */
  shrinkage: number;
  /** How many images it was fitted on. */
  n: number;
}

/** Training z beyond this are clipped when the covariance is estimated, so one odd cell cannot steer it. */
const FIT_CLIP = 4;
/** Shrinkage towards the identity: with ~60 cells and 11 features the sample covariance is noisy. */
export const DEFAULT_SHRINKAGE = 0.5;

const median = (values: number[]) => {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * Fits the domain of a set of in-domain images from their domainFeatures. Needs at least 5 images;
 * throws BAD_USER_INPUT for fewer or for feature vectors of the wrong length or with non-finite values.
 */
export function fitDomainModel(features: Float64Array[], options: { shrinkage?: number } = {}): DomainModel {
  const d = DOMAIN_FEATURES.length;
  if (features.length < 5) throw badInput(`A domain model needs at least 5 images; got ${features.length}.`);
  for (const f of features) {
    if (f.length !== d || !f.every(Number.isFinite))
      throw badInput(`Each feature vector must hold ${d} finite numbers.`);
  }
  const shrinkage = options.shrinkage ?? DEFAULT_SHRINKAGE;
  if (!(shrinkage >= 0 && shrinkage <= 1)) throw badInput(`shrinkage must be in [0, 1]; got ${shrinkage}.`);
  const center: number[] = [];
  const scale: number[] = [];
  DOMAIN_FEATURES.forEach((name, j) => {
    const column = features.map((f) => f[j]);
    const m = median(column);
    center.push(m);
    scale.push(Math.max(1.4826 * median(column.map((v) => Math.abs(v - m))), SCALE_FLOOR[name]));
  });
  const zs = features.map((f) =>
    Array.from(f, (v, j) => Math.max(-FIT_CLIP, Math.min(FIT_CLIP, (v - center[j]) / scale[j]))),
  );
  // Second moments about the median (robust z have centre 0 by construction), shrunk towards the
  // identity: the z are on a common scale, so the identity is the natural target.
  const covariance = new Float64Array(d * d);
  for (const z of zs)
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) covariance[a * d + b] += z[a] * z[b];
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) {
      covariance[a * d + b] =
        (1 - shrinkage) * (covariance[a * d + b] / zs.length) + (a === b ? shrinkage : 0);
    }
  }
  return {
    features: [...DOMAIN_FEATURES],
    center,
    scale,
    precision: Array.from(invertSymmetric(covariance, d)),
    shrinkage,
    n: features.length,
  };
}

/** Inverse of a symmetric positive definite matrix by Cholesky (d is small). */
function invertSymmetric(matrix: Float64Array, d: number): Float64Array {
  const l = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = matrix[i * d + j];
      for (let k = 0; k < j; k++) sum -= l[i * d + k] * l[j * d + k];
      if (i === j) l[i * d + i] = Math.sqrt(Math.max(sum, 1e-12));
      else l[i * d + j] = sum / l[j * d + j];
    }
  }
  // Columns of L^-1 by forward substitution, then A^-1 = L^-T L^-1.
  const inverseL = new Float64Array(d * d);
  for (let col = 0; col < d; col++) {
    for (let i = col; i < d; i++) {
      let sum = i === col ? 1 : 0;
      for (let k = col; k < i; k++) sum -= l[i * d + k] * inverseL[k * d + col];
      inverseL[i * d + col] = sum / l[i * d + i];
    }
  }
  const inverse = new Float64Array(d * d);
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) {
      let sum = 0;
      for (let k = Math.max(a, b); k < d; k++) sum += inverseL[k * d + a] * inverseL[k * d + b];
      inverse[a * d + b] = sum;
    }
  }
  return inverse;
}

/** True when `value` has the shape of a DomainModel for the features this code computes. */
export function isDomainModel(value: unknown): value is DomainModel {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Partial<DomainModel>;
  const d = DOMAIN_FEATURES.length;
  const numbers = (list: unknown, length: number) =>
    Array.isArray(list) &&
    list.length === length &&
    list.every((v) => typeof v === 'number' && Number.isFinite(v));
  return (
    Array.isArray(m.features) &&
    m.features.length === d &&
    m.features.every((name, j) => name === DOMAIN_FEATURES[j]) &&
    numbers(m.center, d) &&
    numbers(m.scale, d) &&
    (m.scale as number[]).every((s) => s > 0) &&
    numbers(m.precision, d * d) &&
    typeof m.shrinkage === 'number' &&
    typeof m.n === 'number'
  );
}

/** Per-feature robust z of one image against the model: which statistic made an image foreign. */
export function domainZScores(model: DomainModel, features: Float64Array): Float64Array {
  return Float64Array.from(features, (v, j) => (v - model.center[j]) / model.scale[j]);
}

/**
 * How far an image's features lie from the model's domain: the Mahalanobis distance of its robust z
 * under the shrunk covariance. Larger is further; in-domain images score around sqrt(d) or below.
 * Finite for finite features; throws on a model of other features (a damaged or future card).
 */
export function domainScore(model: DomainModel, features: Float64Array): number {
  const d = DOMAIN_FEATURES.length;
  if (!isDomainModel(model)) throw new Error('The model card holds a malformed out-of-domain model.');
  if (features.length !== d) throw badInput(`Expected ${d} domain features; got ${features.length}.`);
  const z = domainZScores(model, features);
  let sum = 0;
  for (let a = 0; a < d; a++) {
    let row = 0;
    for (let b = 0; b < d; b++) row += model.precision[a * d + b] * z[b];
    sum += z[a] * row;
  }
  return Math.sqrt(Math.max(0, sum));
}

/**
 * The threshold above which an image is out of domain, from scores of in-domain images the model did
 * not see (out of fold: cells of held-out subjects). Split-conformal: the ceil((n + 1)(1 - rate))-th
 * smallest score, so a new exchangeable in-domain image exceeds it with probability at most `rate`.
 * With too few scores for that rank the largest score is returned, and the guarantee does not hold
 * (a caller with fewer than 1 / rate - 1 scores should say so).
 */
export function fitDomainThreshold(inDomainScores: number[], falseAlarmRate: number): number {
  if (inDomainScores.length === 0) throw badInput('fitDomainThreshold needs at least one score.');
  if (!inDomainScores.every(Number.isFinite)) throw badInput('Out-of-fold domain scores must be finite.');
  if (!(falseAlarmRate > 0 && falseAlarmRate < 1))
    throw badInput(`falseAlarmRate must be in (0, 1); got ${falseAlarmRate}.`);
  const sorted = inDomainScores.slice().sort((a, b) => a - b);
  const rank = Math.ceil((sorted.length + 1) * (1 - falseAlarmRate));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/**
 * Out-of-fold domain scores: each image scored by a domain model fitted on the other subjects' images
 * only (kFoldBySubject), which is how a new patient's cells will score. Feed them to
 * fitDomainThreshold. Aligned with `items`.
 */
export function outOfFoldDomainScores<T extends SplitItem & { features: Float64Array }>(
  items: T[],
  k: number,
  seed: number,
  options: { shrinkage?: number } = {},
): number[] {
  const index = new Map(items.map((item, i) => [item, i]));
  const scores = new Array<number>(items.length).fill(NaN);
  for (const fold of kFoldBySubject(items, k, seed)) {
    const model = fitDomainModel(
      fold.train.map((item) => item.features),
      options,
    );
    for (const item of fold.test) scores[index.get(item)!] = domainScore(model, item.features);
  }
  return scores;
}
