import sharp from 'sharp';
import { badInput, UnreachableCaseError } from '../../errors';
import { applyColour, hueSaturationMatrix } from './colour';
import type { RgbImage } from './types';

/**
 * Stand-ins for another lab's images of the same cells, made from ours: a different stain hue, a paler
 * and warmer stain, a background that is not black, another magnification. A model is robust to other
 * labs as far as its answers on these variants stay those on the originals; cross-validation scores
 * its test folds on them (`lymphoscope cv --shifts ...`).
 */
export const LAB_SHIFTS = ['hue', 'pale', 'grey-background', 'zoom-0.8', 'zoom-1.25'] as const;
export type LabShift = (typeof LAB_SHIFTS)[number];

export function isLabShift(value: string): value is LabShift {
  return (LAB_SHIFTS as readonly string[]).includes(value);
}

/** Background level of 'grey-background' (0-255): a bright-field slide photographed without masking. */
export const GREY_BACKGROUND = 96;

/** A channel at or below this is background in a C-NMC image (see FOREGROUND_LEVEL in morphology.ts). */
const BLACK = 8;

/** An RgbImage over sharp's raw RGB output, without a copy. */
export function fromRaw(width: number, height: number, raw: Buffer): RgbImage {
  return { width, height, data: new Uint8Array(raw.buffer, raw.byteOffset, raw.length) };
}

/** Returns a new image; the input is not changed. */
export async function applyLabShift(img: RgbImage, shift: LabShift): Promise<RgbImage> {
  if (!isLabShift(shift)) {
    throw badInput(`Unknown lab shift '${shift as string}'; expected one of ${LAB_SHIFTS.join(', ')}.`);
  }
  switch (shift) {
    case 'hue':
      // A stain that came out 40 degrees away in hue: purple nuclei turn bluer, pink cytoplasm redder.
      return recolour(img, hueSaturationMatrix((40 * Math.PI) / 180, 1), [1, 1, 1]);
    case 'pale':
      // Weaker staining on a warmer camera: 60% saturation, red up and blue down by 10%.
      return recolour(img, hueSaturationMatrix(0, 0.6), [1.1, 1, 0.9]);
    case 'grey-background':
      return replaceBackground(img, GREY_BACKGROUND);
    case 'zoom-0.8':
      return zoom(img, 0.8);
    case 'zoom-1.25':
      return zoom(img, 1.25);
    default:
      throw new UnreachableCaseError(shift);
  }
}

// Read once for the per-pixel loop: inside a sandboxed global (Jest's vm context) each lookup of the
// global Math is about 200 times slower than a local.
const { round } = Math;

function recolour(img: RgbImage, matrix: readonly number[], gains: number[]): RgbImage {
  // Plain loops: TypedArray.from with a map function is several times slower on a 450x450 image.
  const pixels = new Float32Array(img.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = img.data[i] / 255;
  applyColour(pixels, matrix, gains);
  const data = new Uint8Array(pixels.length);
  for (let i = 0; i < data.length; i++) data[i] = round(pixels[i] * 255);
  return { width: img.width, height: img.height, data };
}

/** Every pixel whose channels are all at or below BLACK becomes `level` grey. */
function replaceBackground(img: RgbImage, level: number): RgbImage {
  const data = Uint8Array.from(img.data);
  for (let i = 0; i < data.length; i += 3) {
    if (data[i] <= BLACK && data[i + 1] <= BLACK && data[i + 2] <= BLACK) {
      data[i] = level;
      data[i + 1] = level;
      data[i + 2] = level;
    }
  }
  return { width: img.width, height: img.height, data };
}

/**
 * The same field of view at `factor` times the magnification, on a canvas of the same size: above 1 the
 * centre is cropped, below 1 the image is padded with black. Cells then measure factor^2 times the area.
 */
export async function zoom(img: RgbImage, factor: number): Promise<RgbImage> {
  const width = Math.round(img.width * factor);
  const height = Math.round(img.height * factor);
  const resized = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).resize(
    width,
    height,
    { fit: 'fill', kernel: 'lanczos3' },
  );
  let out: Buffer;
  if (factor >= 1) {
    const left = Math.floor((width - img.width) / 2);
    const top = Math.floor((height - img.height) / 2);
    out = await sharp(await resized.raw().toBuffer(), { raw: { width, height, channels: 3 } })
      .extract({ left, top, width: img.width, height: img.height })
      .raw()
      .toBuffer();
  } else {
    const left = Math.floor((img.width - width) / 2);
    const top = Math.floor((img.height - height) / 2);
    out = await sharp(await resized.raw().toBuffer(), { raw: { width, height, channels: 3 } })
      .extend({
        left,
        top,
        right: img.width - width - left,
        bottom: img.height - height - top,
        background: { r: 0, g: 0, b: 0 },
      })
      .raw()
      .toBuffer();
  }
  return fromRaw(img.width, img.height, out);
}
