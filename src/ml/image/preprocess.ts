import sharp from 'sharp';
import { badInput } from '../../errors';
import { blackenBackground } from '../features/morphology';
import { applyColour, hueSaturationMatrix } from './colour';
import type { RgbImage } from './types';

export interface UniformRandom {
  /** Uniform in [0, 1). */
  next(): number;
}

function checkImage(img: RgbImage): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1) {
    throw badInput(`An image must be at least 1x1 pixels; got ${img.width}x${img.height}.`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw badInput(
      `An RGB image of ${img.width}x${img.height} needs ${img.width * img.height * 3} bytes; got ${img.data.length}.`,
    );
  }
}

function checkSquare(pixels: Float32Array, size: number): void {
  if (!Number.isInteger(size) || size < 1 || pixels.length !== size * size * 3) {
    throw badInput(`Expected ${size}x${size}x3 pixel values; got ${pixels.length}.`);
  }
}

/**
 * Resizes an image to `inputSize` x `inputSize` and scales it to [0, 1], HWC, RGB order. An image whose
 * background is not black (another lab's unmasked crop) first has everything outside the cell set to
 * black (blackenBackground in morphology.ts); C-NMC images pass unchanged. The resize
 * stretches rather than pads (fit 'fill'): C-NMC cells are already centred on a square black canvas,
 * and other sources are expected to be square crops too. sharp's Lanczos resampler reduces first, so
 * shrinking 450 to 64 pixels averages fine chromatin texture instead of aliasing it.
 */
export async function toModelInput(img: RgbImage, inputSize: number): Promise<Float32Array> {
  checkImage(img);
  return resizeToModelInput(blackenBackground(img), inputSize);
}

/**
 * The resize and scaling of toModelInput alone, without the background masking: sharp's Lanczos-3
 * with fit 'fill', then /255, HWC RGB.
 */
export async function resizeToModelInput(img: RgbImage, inputSize: number): Promise<Float32Array> {
  checkImage(img);
  if (!Number.isInteger(inputSize) || inputSize < 1 || inputSize > 1024) {
    throw badInput(`The model input size must be an integer from 1 to 1024; got ${inputSize}.`);
  }
  let rgb: Uint8Array = img.data;
  if (img.width !== inputSize || img.height !== inputSize) {
    rgb = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(inputSize, inputSize, { fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer();
  }
  const pixels = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) pixels[i] = rgb[i] / 255;
  return pixels;
}

/**
 * One of the 8 symmetries of the square (the dihedral group D4) applied to a size x size x 3 image:
 * `variant` 0-3 rotates by that many quarter turns clockwise, 4-7 mirror left-right first.
 * Returns a new array.
 */
export function dihedral(pixels: Float32Array, size: number, variant: number): Float32Array {
  checkSquare(pixels, size);
  if (!Number.isInteger(variant) || variant < 0 || variant > 7)
    throw badInput(`variant must be 0-7; got ${variant}.`);
  const out = new Float32Array(pixels.length);
  dihedralInto(pixels, size, variant, out, 0);
  return out;
}

/**
 * dihedral() written into `out` from `offset` on (test-time augmentation fills one batch buffer).
 * Where source pixel (x, y) lands: mirror (u = last - x), then each clockwise quarter turn maps (u, v)
 * to (last - v, u); the four cases below are those turns composed.
 */
function dihedralInto(
  pixels: Float32Array,
  size: number,
  variant: number,
  out: Float32Array,
  offset: number,
) {
  const turns = variant % 4;
  const mirror = variant >= 4;
  const last = size - 1;
  for (let y = 0, src = 0; y < size; y++) {
    for (let x = 0; x < size; x++, src += 3) {
      const u = mirror ? last - x : x;
      let dx: number;
      let dy: number;
      if (turns === 0) {
        dx = u;
        dy = y;
      } else if (turns === 1) {
        dx = last - y;
        dy = u;
      } else if (turns === 2) {
        dx = last - u;
        dy = last - y;
      } else {
        dx = y;
        dy = last - u;
      }
      const dst = offset + (dy * size + dx) * 3;
      out[dst] = pixels[src];
      out[dst + 1] = pixels[src + 1];
      out[dst + 2] = pixels[src + 2];
    }
  }
}

/** All 8 flips and rotations of a square image, identity first: test-time augmentation averages over them. */
export function dihedralVariants(pixels: Float32Array, size: number): Float32Array[] {
  return Array.from({ length: 8 }, (_, variant) => dihedral(pixels, size, variant));
}

/**
 * The 7 views of test-time augmentation besides the image itself (variants 1-7 of dihedral), one after
 * the other in one batch buffer: 7 x size x size x 3 values.
 */
export function otherDihedralViews(pixels: Float32Array, size: number): Float32Array {
  checkSquare(pixels, size);
  const view = pixels.length;
  const out = new Float32Array(7 * view);
  for (let variant = 1; variant < 8; variant++)
    dihedralInto(pixels, size, variant, out, (variant - 1) * view);
  return out;
}

export interface AugmentOptions {
  /** Brightness: every value is multiplied by a gain drawn from [1 - b, 1 + b]. Default 0.1. */
  brightness?: number;
  /** Contrast: a gamma drawn from [1 - c, 1 + c]. Default 0.1. */
  contrast?: number;
  /**
   * Stain and camera colour: with j > 0, a hue rotation drawn from [-j, j] * pi/2 radians, a saturation
   * factor from [1 - j, 1 + j] and a gain per channel from [1 - j/4, 1 + j/4]. Default 0 (off).
   */
  colourJitter?: number;
}

/**
 * A training-time augmentation, deterministic for a given `rng`: one of the 8 flips/rotations (a cell
 * has no up, so all are equally plausible), then a small brightness and contrast jitter that stands in
 * for differences in staining and illumination between slides.
 *
 * Brightness is a gain and contrast a gamma curve, rather than offsets around the mean, because both
 * keep black at exactly 0: the C-NMC background stays background and the model cannot learn anything
 * from a grey canvas. Values are clamped to [0, 1]. Returns a new array; `rng` is called 3 times (8 with colour jitter).
 */
export function augment(
  pixels: Float32Array,
  size: number,
  rng: UniformRandom,
  options: AugmentOptions = {},
): Float32Array {
  const { brightness = 0.1, contrast = 0.1, colourJitter = 0 } = options;
  const variant = Math.min(7, Math.floor(rng.next() * 8));
  const gain = 1 + brightness * (2 * rng.next() - 1);
  const gamma = 1 + contrast * (2 * rng.next() - 1);
  const out = dihedral(pixels, size, variant);
  // A value scaled from 8 bits (k / 255, as resizeToModelInput makes every one) takes its result from a
  // table of the 256: the same Math.pow of the same float32 value, once per value instead of per pixel.
  const curve = new Float64Array(256);
  for (let k = 0; k < 256; k++) curve[k] = brightnessAndContrast(EIGHT_BIT[k], gain, gamma);
  for (let i = 0; i < out.length; i++) {
    const x = out[i];
    const k = Math.round(x * 255);
    out[i] = k >= 0 && k < 256 && EIGHT_BIT[k] === x ? curve[k] : brightnessAndContrast(x, gain, gamma);
  }
  // Drawn only when on, so a run without colour jitter draws exactly the numbers it always did.
  if (colourJitter > 0) {
    const draw = () => 2 * rng.next() - 1;
    const matrix = hueSaturationMatrix((draw() * colourJitter * Math.PI) / 2, 1 + colourJitter * draw());
    applyColour(
      out,
      matrix,
      [0, 1, 2].map(() => 1 + (colourJitter / 4) * draw()),
    );
  }
  return out;
}

/** The 256 values an 8-bit channel scales to (k / 255 in float32, as resizeToModelInput stores them). */
const EIGHT_BIT = Float32Array.from({ length: 256 }, (_, k) => k / 255);

/** augment's gain and gamma on one value, clamped to [0, 1]; black stays black. */
function brightnessAndContrast(x: number, gain: number, gamma: number): number {
  const value = x > 0 ? gain * Math.pow(x, gamma) : 0;
  return value > 1 ? 1 : value < 0 ? 0 : value;
}

/** The augmentation a training config asks for, in the shape train() takes. */
export function augmenterFor(config: {
  colourJitter?: number;
}): (pixels: Float32Array, size: number, rng: UniformRandom) => Float32Array {
  const colourJitter = config.colourJitter ?? 0;
  return (pixels, size, rng) => augment(pixels, size, rng, { colourJitter });
}
