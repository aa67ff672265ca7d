import { badInput } from '../../errors';
import type { RgbImage } from './types';
import { MemoryLayout, wasmKernel } from '../wasm/kernel';
import { FOREGROUND_WASM } from '../wasm/kernels.generated';

/**
 * The foreground of a single-cell image, found once and shared: morphology (the cell's outline and
 * texture), the out-of-domain statistics (how many pieces, how much is cell) and the background
 * masking before the network all start from the same pixels "further than FOREGROUND_LEVEL from the
 * background colour" and the same 8-connected components. Computing them once per image instead of
 * three times was most of the 10 ms those stages cost on a 450x450 C-NMC cell.
 *
 * Components are found on runs (maximal horizontal stretches of foreground in one row) with a
 * union-find over the runs, not by flood-filling pixels: a cell is a few hundred runs against 200,000
 * pixels. Every pixel loop below visits pixels in raster order, so sums over a component add the same
 * numbers in the same order as a per-pixel loop would, to the last bit.
 */

/** A channel further than this from the background colour is foreground. C-NMC: background 0, darkest cytoplasm about 15. */
export const FOREGROUND_LEVEL = 8;

export interface Foreground {
  width: number;
  height: number;
  /** The per-channel median colour of the image's outermost pixels (backgroundColour). */
  background: [number, number, number];
  /** 1 where some channel differs from the background by more than FOREGROUND_LEVEL, row-major. */
  mask: Uint8Array;
  /** How many pixels of `mask` are 1. */
  foregroundPixels: number;
  /** Pixels with some channel at 255. */
  clippedPixels: number;
  /** The highest channel value in the image (the heat map's overlay brightens the cell by it). */
  brightest: number;
  /** Runs in raster order: row, first column, one past the last column. */
  runRow: Int32Array;
  runStart: Int32Array;
  runEnd: Int32Array;
  /** The component of each run: the index of the component's first run in raster order. */
  runComponent: Int32Array;
  /** Pixels per component, indexed like runComponent (0 for a run that is not a component's first). */
  componentSize: Int32Array;
  /** The largest component (the earliest in raster order among equals), -1 when there is no foreground. */
  cell: number;
}

function checkImage(img: RgbImage): void {
  if (img.width < 1 || img.height < 1 || img.data.length !== img.width * img.height * 3) {
    throw badInput(`Expected an RGB image of ${img.width}x${img.height}; got ${img.data.length} bytes.`);
  }
}

/**
 * The background colour: the per-channel median of the image's outermost pixels. A single cell sits in
 * the middle of its crop, so the frame is background: black for C-NMC, grey or white for a slide
 * photographed without masking.
 */
export function backgroundColour(img: RgbImage): [number, number, number] {
  checkImage(img);
  const { width, height, data } = img;
  const border = width > 1 && height > 1 ? 2 * width + 2 * (height - 2) : width * height;
  const channels = [new Uint8Array(border), new Uint8Array(border), new Uint8Array(border)];
  let k = 0;
  const add = (x: number, y: number) => {
    const i = (y * width + x) * 3;
    channels[0][k] = data[i];
    channels[1][k] = data[i + 1];
    channels[2][k] = data[i + 2];
    k++;
  };
  for (let x = 0; x < width; x++) {
    add(x, 0);
    if (height > 1) add(x, height - 1);
  }
  for (let y = 1; y < height - 1; y++) {
    add(0, y);
    if (width > 1) add(width - 1, y);
  }
  // The upper median (index length >> 1 of the sorted values), by counting: values are bytes.
  const median = (values: Uint8Array) => {
    const counts = new Int32Array(256);
    for (let i = 0; i < k; i++) counts[values[i]]++;
    let seen = 0;
    for (let v = 0; v < 256; v++) {
      seen += counts[v];
      if (seen > k >> 1) return v;
    }
    return 255;
  };
  return [median(channels[0]), median(channels[1]), median(channels[2])];
}

/** Finds a run's root, halving the path on the way (the root is always the smallest index). */
function find(parent: Int32Array, i: number): number {
  while (parent[i] !== i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

/** Joins the sets of `a` and `b`; the smaller root stays root. */
function union(parent: Int32Array, a: number, b: number): void {
  const ra = find(parent, a);
  const rb = find(parent, b);
  if (ra < rb) parent[rb] = ra;
  else if (rb < ra) parent[ra] = rb;
}

/** Foreground runs in raster order: row, first column, one past the last column. */
interface RunList {
  row: Int32Array;
  start: Int32Array;
  end: Int32Array;
}

/** The foreground kernel's function (src/ml/wasm/foreground.wat); pointers are byte offsets in its memory. */
interface ForegroundFunctions {
  scanPixels(
    data: number,
    width: number,
    height: number,
    br: number,
    bg: number,
    bb: number,
    level: number,
    black: number,
    mask: number,
    runs: number,
    capacity: number,
    counts: number,
  ): number;
}

/**
 * The foreground kernel. A 450x450 C-NMC cell needs about 1 MB of its memory (pixels, mask, and room for
 * 16 runs a row); an image near the API's largest side needs about 70 MB, which is not kept.
 */
const foregroundKernel = wasmKernel<ForegroundFunctions>(FOREGROUND_WASM, { retainBytes: 16 << 20 });

/**
 * The pass over the pixels: the mask, the runs and the image's counts, by the kernel
 * src/ml/wasm/foreground.wat (four black pixels at a time where black is background). Room for 16 runs a
 * row first (a C-NMC cell has a few hundred runs in all); when they do not fit, the pass runs again with
 * room for the most an image can have, a run every other pixel.
 */
function scanPixels(img: RgbImage, background: readonly number[], mask: Uint8Array) {
  const { width, height, data } = img;
  const [br, bg, bb] = background;
  const black = +(br <= FOREGROUND_LEVEL && bg <= FOREGROUND_LEVEL && bb <= FOREGROUND_LEVEL);
  const pixels = width * height;
  for (const capacity of [16 * height, height * ((width + 1) >> 1)]) {
    const layout = new MemoryLayout();
    const at = {
      data: layout.place(pixels * 3),
      mask: layout.place(pixels),
      runs: layout.place(capacity * 12),
      counts: layout.place(12),
    };
    const { memory, functions } = foregroundKernel(layout.end);
    const heap = memory.buffer;
    new Uint8Array(heap, at.data, pixels * 3).set(data);
    new Uint8Array(heap, at.mask, pixels).fill(0);
    // prettier-ignore
    const count = functions.scanPixels(
      at.data, width, height, br, bg, bb, FOREGROUND_LEVEL, black, at.mask, at.runs, capacity, at.counts,
    );
    if (count < 0) continue;
    mask.set(new Uint8Array(heap, at.mask, pixels));
    const triplets = new Int32Array(heap, at.runs, count * 3);
    const runs: RunList = {
      row: new Int32Array(count),
      start: new Int32Array(count),
      end: new Int32Array(count),
    };
    for (let r = 0, k = 0; r < count; r++, k += 3) {
      runs.row[r] = triplets[k];
      runs.start[r] = triplets[k + 1];
      runs.end[r] = triplets[k + 2];
    }
    const [foregroundPixels, clippedPixels, brightest] = new Int32Array(heap, at.counts, 3);
    return { runs, foregroundPixels, clippedPixels, brightest };
  }
  throw new Error('A foreground pass found more runs than a run every other pixel.');
}

/**
 * Unions runs of neighbouring rows that touch, diagonals included (8-connectivity). The smaller index
 * always becomes the root, so a component's root is its first run in raster order.
 */
function joinRuns({ row: runRow, start: runStart, end: runEnd }: RunList): Int32Array {
  const runs = runRow.length;
  const parent = new Int32Array(runs);
  for (let r = 0; r < runs; r++) parent[r] = r;
  let previous = 0; // first run of the previous row
  let current = 0; // first run of this row
  while (current < runs) {
    const y = runRow[current];
    let end = current;
    while (end < runs && runRow[end] === y) end++;
    if (previous < current && runRow[previous] === y - 1) {
      let a = previous;
      for (let b = current; b < end; b++) {
        while (a < current && runEnd[a] < runStart[b]) a++;
        for (let c = a; c < current && runStart[c] <= runEnd[b]; c++) {
          union(parent, c, b);
        }
      }
    }
    previous = current;
    current = end;
  }
  return parent;
}

/**
 * The foreground, its runs and its 8-connected components, in one pass over the pixels and one over
 * the runs. Never throws for a well-formed RgbImage.
 */
export function findForeground(img: RgbImage): Foreground {
  checkImage(img);
  const { width, height } = img;
  const background = backgroundColour(img);
  const mask = new Uint8Array(width * height);
  const { runs: list, foregroundPixels, clippedPixels, brightest } = scanPixels(img, background, mask);
  const parent = joinRuns(list);
  const { row: runRow, start: runStart, end: runEnd } = list;
  const runs = runRow.length;
  const runComponent = new Int32Array(runs);
  const componentSize = new Int32Array(runs);
  let cell = -1;
  for (let r = 0; r < runs; r++) {
    const root = find(parent, r);
    runComponent[r] = root;
    componentSize[root] += runEnd[r] - runStart[r];
  }
  for (let r = 0; r < runs; r++) {
    if (runComponent[r] === r && (cell < 0 || componentSize[r] > componentSize[cell])) cell = r;
  }
  return {
    width,
    height,
    background,
    mask,
    foregroundPixels,
    clippedPixels,
    brightest,
    runRow,
    runStart,
    runEnd,
    runComponent,
    componentSize,
    cell,
  };
}

/** The cell as a mask plus each row's extent, so that loops over the cell can skip the background. */
export interface CellRegion {
  /** 1 inside the cell (holes filled), 0 outside, row-major. */
  mask: Uint8Array;
  /** First column of the cell in each row, -1 for a row without cell. */
  rowStart: Int32Array;
  /** One past the last column of the cell in each row (0 for a row without cell). */
  rowEnd: Int32Array;
  /** Pixels inside the cell. */
  area: number;
}

/**
 * The cell: the largest component with its holes filled, since background not 4-connected to the
 * image's border (vacuoles, pale nucleoli) is cell. All zeros when there is no foreground.
 *
 * Holes are found on the gaps between the cell's runs of one row: everything left of a row's first run
 * and right of its last touches the image's side, so only those gaps can be holes, and a gap is outside
 * when it reaches (4-connected, through gaps of the rows above and below) a row's outer stretch or the
 * top or bottom row.
 */
export function cellRegion(fg: Foreground): CellRegion {
  const { width, height, cell } = fg;
  const mask = new Uint8Array(width * height);
  const rowStart = new Int32Array(height).fill(-1);
  const rowEnd = new Int32Array(height);
  if (cell < 0) return { mask, rowStart, rowEnd, area: 0 };
  const runs = fg.runRow.length;
  // The gaps between consecutive runs of the cell in one row.
  const gapRow: number[] = [];
  const gapStart: number[] = [];
  const gapEnd: number[] = [];
  const rowFirstGap = new Int32Array(height + 1).fill(-1);
  let area = 0;
  for (let r = cell, lastEnd = -1, lastRow = -1; r < runs; r++) {
    if (fg.runComponent[r] !== cell) continue;
    const y = fg.runRow[r];
    const start = fg.runStart[r];
    const end = fg.runEnd[r];
    area += end - start;
    mask.fill(1, y * width + start, y * width + end);
    if (y !== lastRow) {
      rowStart[y] = start;
    } else {
      if (rowFirstGap[y] < 0) rowFirstGap[y] = gapRow.length;
      gapRow.push(y);
      gapStart.push(lastEnd);
      gapEnd.push(start);
    }
    rowEnd[y] = end;
    lastRow = y;
    lastEnd = end;
  }
  const gaps = gapRow.length;
  if (gaps === 0) return { mask, rowStart, rowEnd, area };

  const parent = new Int32Array(gaps);
  const outside = new Uint8Array(gaps);
  for (let g = 0; g < gaps; g++) parent[g] = g;
  // A gap whose columns reach beyond a neighbouring row's extent touches that row's outer stretch.
  const reachesOut = (g: number, y: number) =>
    y < 0 || y >= height || rowStart[y] < 0 || gapStart[g] < rowStart[y] || gapEnd[g] > rowEnd[y];
  let above = 0; // first gap of the row above, when it has gaps
  for (let g = 0; g < gaps; g++) {
    const y = gapRow[g];
    if (reachesOut(g, y - 1) || reachesOut(g, y + 1)) outside[g] = 1;
    if (g > 0 && gapRow[g - 1] !== y) above = rowFirstGap[y - 1] >= 0 ? rowFirstGap[y - 1] : g;
    if (rowFirstGap[y - 1] === undefined || rowFirstGap[y - 1] < 0) continue;
    for (let c = above; c < gaps && gapRow[c] === y - 1; c++) {
      if (gapStart[c] < gapEnd[g] && gapStart[g] < gapEnd[c]) {
        union(parent, c, g);
      }
    }
  }
  for (let g = 0; g < gaps; g++) if (outside[g]) outside[find(parent, g)] = 1;
  for (let g = 0; g < gaps; g++) {
    if (outside[find(parent, g)]) continue;
    const row = gapRow[g] * width;
    mask.fill(1, row + gapStart[g], row + gapEnd[g]);
    area += gapEnd[g] - gapStart[g];
  }
  return { mask, rowStart, rowEnd, area };
}
