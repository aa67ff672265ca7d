import {
  backgroundColour,
  cellRegion,
  findForeground,
  FOREGROUND_LEVEL,
  type Foreground,
} from '../image/foreground';
import type { RgbImage } from '../image/types';
import { type CellBox, measureTexture, TEXTURE_FEATURES, type Texture, type TextureFeature } from './texture';

export { backgroundColour };

/**
 * Shape and texture of the one cell in an image, the features a hematologist reads off a blast: size
 * (blasts are larger), outline (irregular, clefted), chromatin texture. Lengths and areas are in pixels
 * of the image as given (C-NMC: 450x450); intensities are Rec. 601 luma on the 0-255 scale.
 */
export interface Morphology {
  areaPx: number;
  perimeterPx: number;
  /** 4*pi*area / perimeter^2: 1 for a disc, lower for elongated or ragged outlines. */
  circularity: number;
  /** area / convex hull area: 1 for a convex cell, lower for clefts and notches. */
  solidity: number;
  /** Of the ellipse with the same second moments: 0 for a circle, towards 1 for elongated cells. */
  eccentricity: number;
  /** Diameter of the disc with the same area. */
  equivalentDiameterPx: number;
  meanIntensity: number;
  /** Standard deviation of intensity inside the cell: coarse, clumped chromatin scores higher. */
  intensityStd: number;
  meanRgb: [number, number, number];
  /** Chromatin texture (texture.ts); absent in records made before it was measured. */
  texture?: Texture;
}

const luma = (data: Uint8Array, i: number) => 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];

// Read once: inside a sandboxed global (Jest's vm context) every lookup of the global `Math` costs
// about 200 times more.
const { abs, max, min, sqrt, PI } = Math;

/**
 * The cell's mask, 1 inside and 0 outside, row-major. A pixel is cell when some channel differs from
 * the background colour (backgroundColour) by more than a low fixed level: on C-NMC's pure black that
 * is "some channel above 8", and a lab whose background is grey gets the same outline rather than a
 * whole-image "cell". The largest connected component is the cell (specks and fragments of neighbours
 * go), and holes are filled so vacuoles count as cell. All zeros when there is no cell.
 */
export function segmentCell(img: RgbImage): Uint8Array {
  return cellRegion(findForeground(img)).mask;
}

/**
 * The image with everything outside the cell set to black, as C-NMC delivers its cells; the image itself
 * (not a copy) when its background is already black, which costs a look at the border and nothing more.
 * A network trained on cells on black calls almost every cell on a grey background one class: this
 * puts another lab's unmasked crops on the background the network knows.
 */
export function blackenBackground(img: RgbImage): RgbImage {
  const background = backgroundColour(img);
  if (background.every((v) => v <= FOREGROUND_LEVEL)) return img;
  const mask = segmentCell(img);
  const data = Uint8Array.from(img.data);
  for (let p = 0; p < mask.length; p++) {
    if (mask[p]) continue;
    data[p * 3] = 0;
    data[p * 3 + 1] = 0;
    data[p * 3 + 2] = 0;
  }
  return { width: img.width, height: img.height, data };
}

// Moore neighbourhood in clockwise order (y down), starting west: chain codes 0-7.
const DX = [-1, -1, 0, 1, 1, 1, 0, -1];
const DY = [0, -1, -1, -1, 0, 1, 1, 1];

/**
 * Traces the outer boundary of a single 8-connected region (Moore tracing) and returns its length by
 * the Vossepoel-Smeulders estimator, 0.980 even + 1.406 odd - 0.091 corners: plain chain-code length
 * overstates a digital circle's perimeter by about 5%, which would pull every circularity below 0.95.
 * The chain runs through the centres of the boundary pixels, half a pixel inside the cell's edge; an
 * outline offset outwards by d grows by 2*pi*d, so pi is added. A disc of radius 100 then measures
 * within 0.5% of 2*pi*r, and a square at any angle has circularity within 0.04 of pi/4.
 */
function perimeterOf(mask: Uint8Array, width: number, height: number, start: number): number {
  const inside = (x: number, y: number) =>
    x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] === 1;
  const sx = start % width;
  const sy = (start - sx) / width;
  // `start` is the first mask pixel in raster order, so its west neighbour is outside.
  let x = sx;
  let y = sy;
  let from = 0; // direction (from the current pixel) of the outside pixel we came around from
  const codes: number[] = [];
  /** The first direction, sweeping clockwise from `from`, whose neighbour of (x, y) is inside; -1: none. */
  const nextInside = () => {
    for (let k = 1; k <= 8; k++) {
      const d = (from + k) % 8;
      if (inside(x + DX[d], y + DY[d])) return d;
    }
    return -1;
  };
  const maxSteps = 4 * mask.length + 8;
  for (let step = 0; step < maxSteps; step++) {
    const found = nextInside();
    if (found < 0) return 0; // a single pixel: no outline to measure
    codes.push(found);
    x += DX[found];
    y += DY[found];
    // The sweep resumes at the last outside pixel it saw (direction found - 1 from the old pixel), which
    // seen from the new pixel lies 2 steps back for a straight move and 3 for a diagonal one.
    from = (found + (found % 2 === 0 ? 6 : 5)) % 8;
    if (x === sx && y === sy && codes.length > 1) {
      // Jacob's stopping criterion: back at the start, about to leave the way we first did.
      if (nextInside() === codes[0]) break;
    }
  }
  let even = 0;
  let odd = 0;
  let corners = 0;
  codes.forEach((code, i) => {
    if (code % 2 === 0) even++;
    else odd++;
    if (code !== codes[(i + 1) % codes.length]) corners++;
  });
  return 0.98 * even + 1.406 * odd - 0.091 * corners + PI;
}

function cross(o: [number, number], a: [number, number], b: [number, number]): number {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

/**
 * Area of the convex hull of the pixels taken as unit squares, which is what pixel-count area should be
 * compared with: a disc's solidity then comes out near 1, not above it. Only each row's outermost
 * corners can be on the hull, so the hull is built from 4 points per row (monotone chain).
 */
/** The cell's bounding box from its rows' extents (rowEnd exclusive): a pass over rows, not pixels. */
function boxOfRows(rowStart: Int32Array, rowEnd: Int32Array): CellBox {
  let box: CellBox = null;
  for (let y = 0; y < rowStart.length; y++) {
    if (rowStart[y] < 0) continue;
    if (!box) box = { x0: rowStart[y], y0: y, x1: rowEnd[y] - 1, y1: y };
    box.x0 = min(box.x0, rowStart[y]);
    box.x1 = max(box.x1, rowEnd[y] - 1);
    box.y1 = y;
  }
  return box;
}

function convexHullArea(rowStart: Int32Array, rowEnd: Int32Array): number {
  const points: Array<[number, number]> = [];
  for (let y = 0; y < rowStart.length; y++) {
    const first = rowStart[y];
    if (first < 0) continue;
    const end = rowEnd[y];
    points.push([first, y], [first, y + 1], [end, y], [end, y + 1]);
  }
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const hull: Array<[number, number]> = [];
  for (const pass of [points, points.slice().reverse()]) {
    const start = hull.length;
    for (const p of pass) {
      while (hull.length >= start + 2 && cross(hull[hull.length - 2], hull[hull.length - 1], p) <= 0)
        hull.pop();
      hull.push(p);
    }
    hull.pop();
  }
  let twiceArea = 0;
  for (let i = 0; i < hull.length; i++) {
    const [x1, y1] = hull[i];
    const [x2, y2] = hull[(i + 1) % hull.length];
    twiceArea += x1 * y2 - x2 * y1;
  }
  return abs(twiceArea) / 2;
}

/**
 * The cell's pixel count and first sums, and its first pixel. Each pixel loop of the measurement is a
 * function of its own: V8 optimises a long loop while it runs, and code after it that has not run yet
 * sent that optimised code back to the interpreter on a process's first cells (docs/PERFORMANCE.md,
 * "a container's first analyses").
 */
function cellSums(
  data: Uint8Array,
  width: number,
  height: number,
  mask: Uint8Array,
  rowStart: Int32Array,
  rowEnd: Int32Array,
) {
  // The sums leave through an object written at the end of every row, inside the loop: a return that
  // builds an object after the loop needs type feedback that the loop's optimised code (compiled while
  // the loop ran, on the first cell) lacked, and under Node 22 every call then fell back to the
  // interpreter there (`node --trace-deopt`: 126 of 127 calls).
  const sums = { area: 0, sumX: 0, sumY: 0, sumI: 0, sumI2: 0, sumR: 0, sumG: 0, sumB: 0, start: -1 };
  let area = 0;
  let sumX = 0;
  let sumY = 0;
  let sumI = 0;
  let sumI2 = 0;
  let sumR = 0;
  let sumG = 0;
  let sumB = 0;
  let start = -1;
  for (let y = 0; y < height; y++) {
    if (rowStart[y] < 0) continue;
    for (let x = rowStart[y], p = y * width + x, end = rowEnd[y]; x < end; x++, p++) {
      if (!mask[p]) continue;
      if (start < 0) start = p;
      area++;
      sumX += x;
      sumY += y;
      const i = p * 3;
      const intensity = luma(data, i);
      sumI += intensity;
      sumI2 += intensity * intensity;
      sumR += data[i];
      sumG += data[i + 1];
      sumB += data[i + 2];
    }
    sums.area = area;
    sums.sumX = sumX;
    sums.sumY = sumY;
    sums.sumI = sumI;
    sums.sumI2 = sumI2;
    sums.sumR = sumR;
    sums.sumG = sumG;
    sums.sumB = sumB;
    sums.start = start;
  }
  return sums;
}

/** The cell's second central moments about its centroid (cx, cy). */
function secondMoments(
  width: number,
  height: number,
  mask: Uint8Array,
  rowStart: Int32Array,
  rowEnd: Int32Array,
  cx: number,
  cy: number,
) {
  // Written at the end of every row, inside the loop (see cellSums).
  const moments = { sxx: 0, syy: 0, sxy: 0 };
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let y = 0; y < height; y++) {
    if (rowStart[y] < 0) continue;
    const dy = y - cy;
    for (let x = rowStart[y], p = y * width + x, end = rowEnd[y]; x < end; x++, p++) {
      if (!mask[p]) continue;
      const dx = x - cx;
      sxx += dx * dx;
      syy += dy * dy;
      sxy += dx * dy;
    }
    moments.sxx = sxx;
    moments.syy = syy;
    moments.sxy = sxy;
  }
  return moments;
}

/**
 * Measures the cell found by segmentCell. With no cell in the image the area is 0 and every other
 * feature is NaN (JSON null): there is nothing to measure, and 0 would read as a real value.
 *
 * `foreground` is findForeground(img) when the caller already has it (analyzeCell shares it with the
 * out-of-domain statistics); the loops visit only each row's extent of the cell, in raster order, so
 * the sums are those of a loop over every pixel.
 */
export function measureMorphology(img: RgbImage, foreground: Foreground = findForeground(img)): Morphology {
  const { mask, rowStart, rowEnd } = cellRegion(foreground);
  const { width, height } = img;
  const { area, sumX, sumY, sumI, sumI2, sumR, sumG, sumB, start } = cellSums(
    img.data,
    width,
    height,
    mask,
    rowStart,
    rowEnd,
  );
  if (area === 0) {
    return {
      areaPx: 0,
      perimeterPx: 0,
      circularity: NaN,
      solidity: NaN,
      eccentricity: NaN,
      equivalentDiameterPx: 0,
      meanIntensity: NaN,
      intensityStd: NaN,
      meanRgb: [NaN, NaN, NaN],
      texture: measureTexture(img, mask, boxOfRows(rowStart, rowEnd)),
    };
  }
  const { sxx, syy, sxy } = secondMoments(width, height, mask, rowStart, rowEnd, sumX / area, sumY / area);
  // Eigenvalues of the covariance matrix are the squared semi-axes of the equivalent ellipse, up to a factor.
  const half = (sxx + syy) / 2;
  const spread = sqrt(((sxx - syy) / 2) ** 2 + sxy * sxy);
  const major = half + spread;
  const minor = half - spread;
  const perimeterPx = perimeterOf(mask, width, height, start);
  const meanIntensity = sumI / area;
  return {
    areaPx: area,
    perimeterPx,
    circularity: perimeterPx > 0 ? (4 * PI * area) / (perimeterPx * perimeterPx) : NaN,
    solidity: area / convexHullArea(rowStart, rowEnd),
    eccentricity: major > 0 ? sqrt(max(0, 1 - minor / major)) : 0,
    equivalentDiameterPx: sqrt((4 * area) / PI),
    meanIntensity,
    intensityStd: sqrt(max(0, sumI2 / area - meanIntensity * meanIntensity)),
    meanRgb: [sumR / area, sumG / area, sumB / area],
    texture: measureTexture(img, mask, boxOfRows(rowStart, rowEnd)),
  };
}

/** The scalar features norms are kept for (meanRgb is reported, not compared). */
export const MORPHOLOGY_FEATURES = [
  'areaPx',
  'perimeterPx',
  'circularity',
  'solidity',
  'eccentricity',
  'equivalentDiameterPx',
  'meanIntensity',
  'intensityStd',
] as const;
export type MorphologyFeature = (typeof MORPHOLOGY_FEATURES)[number];

/** What a cell is compared with the class norms on: its shape, then its chromatin texture. */
export const COMPARED_FEATURES = [...MORPHOLOGY_FEATURES, ...TEXTURE_FEATURES] as const;
export type ComparedFeature = MorphologyFeature | TextureFeature;

/** A compared feature's value; NaN for texture of a record measured before texture was. */
export function featureValue(m: Morphology, feature: ComparedFeature): number {
  return (MORPHOLOGY_FEATURES as readonly string[]).includes(feature)
    ? m[feature as MorphologyFeature]
    : (m.texture?.[feature as TextureFeature] ?? NaN);
}

export interface ClassNorm {
  n: number;
  mean: Partial<Record<ComparedFeature, number>>;
  std: Partial<Record<ComparedFeature, number>>;
}

export interface MorphologyNorms {
  all: ClassNorm;
  hem: ClassNorm;
}

/**
 * Per-class mean and sample standard deviation of each feature, over cells with a finite value (a
 * missing cell does not drag a mean to NaN). A class with no cells has empty norms.
 */
export function morphologyNorms(list: Array<{ m: Morphology; label: 0 | 1 }>): MorphologyNorms {
  const of = (label: 0 | 1): ClassNorm => {
    const members = list.filter((entry) => entry.label === label).map((entry) => entry.m);
    const norm: ClassNorm = { n: members.length, mean: {}, std: {} };
    for (const feature of COMPARED_FEATURES) {
      const values = members.map((m) => featureValue(m, feature)).filter(Number.isFinite);
      if (values.length === 0) continue;
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const variance =
        values.length > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1) : NaN;
      norm.mean[feature] = mean;
      norm.std[feature] = Math.sqrt(variance);
    }
    return norm;
  };
  return { all: of(1), hem: of(0) };
}

export interface FeatureComparison {
  feature: ComparedFeature;
  value: number;
  /** value / class mean: 1.3 reads "30% above the typical ALL blast". NaN when the mean is 0 or unknown. */
  ratioToAll: number;
  ratioToHem: number;
  /** (value - class mean) / class std: how unusual the cell is for that class. NaN without a std. */
  zAll: number;
  zHem: number;
  /** The class whose mean is nearer in standard deviations (or, lacking stds, in ratio); null if neither is known. */
  closerTo: 'all' | 'hem' | null;
}

/**
 * Compares one cell with the class norms, feature by feature, in two readings: the ratio to each
 * class mean (for people: "twice the area of a typical normal B-cell") and the z-score against each
 * class (for deciding which class the cell resembles; it needs the standard deviations).
 */
export function compareToNorms(
  m: Morphology,
  norms: MorphologyNorms | { all: Partial<Morphology>; hem: Partial<Morphology> },
): FeatureComparison[] {
  // Norms stored as bare class means (an older model card) still give ratios, just no z-scores.
  const asNorm = (norm: ClassNorm | Partial<Morphology>): ClassNorm =>
    'mean' in norm && typeof norm.mean === 'object'
      ? norm
      : { n: NaN, mean: norm as ClassNorm['mean'], std: {} };
  const all = asNorm(norms.all);
  const hem = asNorm(norms.hem);
  const ratio = (value: number, mean: number | undefined) => (mean ? value / mean : NaN);
  const z = (value: number, mean: number | undefined, std: number | undefined) =>
    mean !== undefined && std !== undefined && std > 0 ? (value - mean) / std : NaN;
  // Texture is compared when the cell has it (a record from before texture has none to show).
  const compared = COMPARED_FEATURES.filter(
    (f) => (MORPHOLOGY_FEATURES as readonly string[]).includes(f) || Number.isFinite(featureValue(m, f)),
  );
  return compared.map((feature) => {
    const value = featureValue(m, feature);
    const zAll = z(value, all.mean[feature], all.std[feature]);
    const zHem = z(value, hem.mean[feature], hem.std[feature]);
    const ratioToAll = ratio(value, all.mean[feature]);
    const ratioToHem = ratio(value, hem.mean[feature]);
    let closerTo: FeatureComparison['closerTo'] = null;
    if (Number.isFinite(zAll) && Number.isFinite(zHem))
      closerTo = Math.abs(zAll) <= Math.abs(zHem) ? 'all' : 'hem';
    else if (Number.isFinite(ratioToAll) && Number.isFinite(ratioToHem)) {
      closerTo = Math.abs(Math.log(ratioToAll)) <= Math.abs(Math.log(ratioToHem)) ? 'all' : 'hem';
    }
    return { feature, value, ratioToAll, ratioToHem, zAll, zHem, closerTo };
  });
}
