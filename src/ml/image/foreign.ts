import sharp from 'sharp';
import { badInput, UnreachableCaseError } from '../../errors';
import { segmentCell } from '../features/morphology';
import { mulberry32 } from '../rng';
import { applyLabShift, fromRaw, LAB_SHIFTS, zoom } from './lab-shift';
import type { RgbImage } from './types';
import { valueNoise } from '../data/synthetic';

/**
 * Images that are not a C-NMC cell, made in code and seeded, for testing out-of-domain detection:
 * what a partner might send by mistake or from another set-up. Beside the lab shifts of lab-shift.ts
 * (stain hue, pale stain, grey background, zoom 0.8 / 1.25) they cover a stronger zoom, a cell out
 * of focus, a photo, an
 * empty field, a white field and a crop with several cells. None of them is data about leukemia.
 */
export const FOREIGN_KINDS = [
  'zoom-1.5',
  'defocus',
  'photo',
  'blank-field',
  'white-field',
  'several-cells',
] as const;
export type ForeignKind = (typeof FOREIGN_KINDS)[number];

// Read once for the per-pixel loops: inside a sandboxed global (Jest's vm context) each lookup of the
// global Math is about 200 times slower than a local.
const { round, min, max } = Math;
const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : round(v));

/**
 * Something photographed that is not a cell: a lit gradient, noise at several scales (1/f-like, as
 * in natural images), a few solid objects and a blown highlight, in colours drawn per seed.
 */
export function photoImage(seed: number, size = 450): RgbImage {
  const random = mulberry32(seed);
  const octaves = [size / 3, size / 9, size / 27, 3].map((cell) => ({
    noise: valueNoise(random, size, Math.max(2, Math.round(cell))),
    amplitude: cell / size,
  }));
  const base = [0, 1, 2].map(() => 60 + 150 * random());
  const tilt = [0, 1, 2].map(() => (random() - 0.5) * 120);
  const objects = Array.from({ length: 3 + Math.floor(random() * 4) }, () => ({
    x: random() * size,
    y: random() * size,
    r: size * (0.05 + 0.15 * random()),
    colour: [0, 1, 2].map(() => 255 * random()),
  }));
  const glare = { x: random() * size, y: random() * size, r: size * (0.05 + 0.1 * random()) };
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let texture = 0;
      for (const o of octaves) texture += o.amplitude * o.noise(x, y);
      const i = (y * size + x) * 3;
      let colour = base;
      let shade = 160 * texture;
      for (const o of objects) {
        if ((x - o.x) ** 2 + (y - o.y) ** 2 < o.r * o.r) {
          colour = o.colour;
          shade = 60 * texture;
        }
      }
      const glareDistance = (x - glare.x) ** 2 + (y - glare.y) ** 2;
      const shine = glareDistance < glare.r * glare.r ? 1 - Math.sqrt(glareDistance) / glare.r : 0;
      const light = (x / size - 0.5) * (colour === base ? 1 : 0);
      for (let c = 0; c < 3; c++) data[i + c] = clamp(colour[c] + tilt[c] * light + shade + 400 * shine);
    }
  }
  return { width: size, height: size, data };
}

/**
 * An empty field: the masked black of C-NMC with faint sensor noise (a few grey levels), or the bright
 * background of an unmasked slide with uneven illumination (`white-field`).
 */
export function emptyField(seed: number, kind: 'blank-field' | 'white-field', size = 450): RgbImage {
  const random = mulberry32(seed);
  const data = new Uint8Array(size * size * 3);
  const level = kind === 'white-field' ? 225 + 25 * random() : 2 * random();
  const vignette = kind === 'white-field' ? 20 + 20 * random() : 0;
  const tint = [0, 1, 2].map(() => (kind === 'white-field' ? (random() - 0.5) * 10 : 0));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // Squared distance from the centre, 1 in the corners.
      const r2 = 2 * ((x / size - 0.5) ** 2 + (y / size - 0.5) ** 2);
      const i = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) data[i + c] = clamp(level + tint[c] - vignette * r2 + 4 * (random() - 0.5));
    }
  }
  return { width: size, height: size, data };
}

/**
 * A crop with several of the given cells at their own magnification, each cut out by its mask and laid
 * on a black canvas of `size` (two side by side, three or four in a 2x2 grid), as a smear crop masked
 * like C-NMC would look. Cells larger than their slot are clipped by it.
 */
export function severalCells(cells: RgbImage[], size = 450): RgbImage {
  if (cells.length < 2 || cells.length > 4)
    throw badInput(`severalCells takes 2-4 cells; got ${cells.length}.`);
  const columns = 2;
  const rows = cells.length === 2 ? 1 : 2;
  const slotW = Math.floor(size / columns);
  const slotH = Math.floor(size / rows);
  const data = new Uint8Array(size * size * 3);
  cells.forEach((cell, k) => {
    const mask = segmentCell(cell);
    let [x0, y0, x1, y1] = [cell.width, cell.height, -1, -1];
    for (let p = 0; p < mask.length; p++) {
      if (!mask[p]) continue;
      const x = p % cell.width;
      const y = (p - x) / cell.width;
      x0 = min(x0, x);
      y0 = min(y0, y);
      x1 = max(x1, x);
      y1 = max(y1, y);
    }
    if (x1 < 0) return;
    // Centre the cell's bounding box in its slot.
    const offX = (k % columns) * slotW + Math.floor((slotW - (x1 - x0 + 1)) / 2) - x0;
    const offY = Math.floor(k / columns) * slotH + Math.floor((slotH - (y1 - y0 + 1)) / 2) - y0;
    const slotX = (k % columns) * slotW;
    const slotY = Math.floor(k / columns) * slotH;
    for (let y = y0; y <= y1; y++) {
      const ty = y + offY;
      if (ty < slotY || ty >= slotY + slotH) continue;
      for (let x = x0; x <= x1; x++) {
        const tx = x + offX;
        if (tx < slotX || tx >= slotX + slotW || !mask[y * cell.width + x]) continue;
        const from = (y * cell.width + x) * 3;
        const to = (ty * size + tx) * 3;
        data[to] = cell.data[from];
        data[to + 1] = cell.data[from + 1];
        data[to + 2] = cell.data[from + 2];
      }
    }
  });
  return { width: size, height: size, data };
}

/** The cell out of focus: a Gaussian blur of `sigma` pixels. */
export async function defocus(img: RgbImage, sigma: number): Promise<RgbImage> {
  const out = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .blur(sigma)
    .raw()
    .toBuffer();
  return fromRaw(img.width, img.height, out);
}

/**
 * One foreign image of `kind`, the same for the same seed and cells. `cells` are in-domain cells to
 * start from (zoom-1.5 uses the first; several-cells takes 2-4 of them, as many as the seed says).
 */
export async function foreignImage(kind: ForeignKind, seed: number, cells: RgbImage[]): Promise<RgbImage> {
  if (!(FOREIGN_KINDS as readonly string[]).includes(kind)) {
    throw badInput(`Unknown foreign image kind '${kind as string}'.`);
  }
  switch (kind) {
    case 'zoom-1.5':
      return zoom(cells[0], 1.5);
    case 'defocus':
      return defocus(cells[0], 2);
    case 'photo':
      return photoImage(seed);
    case 'blank-field':
    case 'white-field':
      return emptyField(seed, kind);
    case 'several-cells':
      return severalCells(cells.slice(0, 2 + (seed % 3)));
    default:
      throw new UnreachableCaseError(kind);
  }
}

/** Every kind of image that must come back OUT_OF_DOMAIN: the lab shifts and the foreign kinds. */
export const OUT_OF_DOMAIN_KINDS = [...LAB_SHIFTS, ...FOREIGN_KINDS] as const;
export type OutOfDomainKind = (typeof OUT_OF_DOMAIN_KINDS)[number];

/**
 * The shifted and foreign images that go with `cells[i]`: its lab shifts, its 1.5x zoom, a crop of it
 * with the next cells of the list (several-cells), and the seeded photo and empty fields. Same list,
 * same i: same images.
 */
export async function outOfDomainImages(
  cells: RgbImage[],
  i: number,
): Promise<Record<OutOfDomainKind, RgbImage>> {
  const neighbours = [0, 7, 19, 31].map((offset) => cells[(i + offset) % cells.length]);
  const out: Partial<Record<OutOfDomainKind, RgbImage>> = {};
  for (const shift of LAB_SHIFTS) out[shift] = await applyLabShift(cells[i], shift);
  for (const kind of FOREIGN_KINDS) out[kind] = await foreignImage(kind, i, neighbours);
  return out as Record<OutOfDomainKind, RgbImage>;
}
