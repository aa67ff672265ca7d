export type ImageFormat = 'bmp' | 'png' | 'jpeg' | 'tiff';

/** 8-bit RGB, interleaved, row-major, top row first: `data.length === width * height * 3`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface ImageLimits {
  maxBytes: number;
  maxWidth: number;
  maxHeight: number;
  /**
   * Called with the size read from the header, after every check and before any pixel is decoded; it
   * may throw to refuse (a per-request pixel budget does).
   */
  beforeDecode?: (size: { width: number; height: number }) => void;
}

/**
 * A C-NMC cell is 450x450 and 600 KB as a BMP; these limits leave room for whole-slide crops and
 * uncompressed TIFFs while keeping one decoded image under 48 MiB of RGB.
 */
export const DEFAULT_IMAGE_LIMITS: Readonly<ImageLimits> = Object.freeze({
  maxBytes: 10 * 1024 * 1024,
  maxWidth: 4096,
  maxHeight: 4096,
});

export const IMAGE_FORMAT_NAMES: Readonly<Record<ImageFormat, string>> = {
  bmp: 'BMP',
  png: 'PNG',
  jpeg: 'JPEG',
  tiff: 'TIFF',
};
