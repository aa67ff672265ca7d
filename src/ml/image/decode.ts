import sharp from 'sharp';
import { LymphoscopeError, unsupportedImage } from '../../errors';
import { decodeBmp } from './bmp';
import { sniffImage } from './sniff';
import {
  DEFAULT_IMAGE_LIMITS,
  IMAGE_FORMAT_NAMES,
  type ImageFormat,
  type ImageLimits,
  type RgbImage,
} from './types';

export { DEFAULT_IMAGE_LIMITS, type ImageFormat, type ImageLimits, type RgbImage } from './types';
export { sniffImage, type ImageInfo } from './sniff';

export type DecodedImage = RgbImage & { format: ImageFormat };

/**
 * Decodes BMP, PNG, JPEG or TIFF bytes to 8-bit RGB, top row first. The header is validated and the
 * dimensions checked against `limits` (sniffImage) before a pixel buffer exists; sharp is also given
 * `limitInputPixels` so a header that lies about its size cannot make libvips allocate more.
 *
 * Transparent pixels become black (flattened), greyscale and CMYK become sRGB, 16-bit samples become
 * 8-bit; for TIFF only the first page is read. EXIF orientation is ignored on purpose: a cell has no up, and the width and height
 * then stay the ones the header (and the upload confirm step) reported.
 *
 * Throws LymphoscopeError: UNSUPPORTED_IMAGE or PAYLOAD_TOO_LARGE (see sniffImage), and
 * UNSUPPORTED_IMAGE when the pixel data is truncated or corrupt.
 */
export async function decodeImage(
  bytes: Uint8Array,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
): Promise<DecodedImage> {
  const info = sniffImage(bytes, limits);
  limits.beforeDecode?.(info);
  if (info.format === 'bmp') return { ...decodeBmp(bytes, limits), format: 'bmp' };

  const name = IMAGE_FORMAT_NAMES[info.format];
  try {
    const { data, info: out } = await sharp(bytes, {
      limitInputPixels: limits.maxWidth * limits.maxHeight,
      // 'error' refuses truncated and corrupt data but tolerates benign warnings (stray bytes after
      // the end marker, unknown chunks) that cameras and slide scanners are known to write.
      failOn: 'error',
    })
      // C-NMC cells sit on black; a cut-out cell with a transparent background should too.
      .flatten({ background: '#000000' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (out.channels !== 3 || out.width !== info.width || out.height !== info.height) {
      throw unsupportedImage(
        `The ${name} file could not be read as an RGB image. Re-save it as an 8-bit RGB PNG.`,
        {
          format: info.format,
          channels: out.channels,
        },
      );
    }
    return {
      width: out.width,
      height: out.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      format: info.format,
    };
  } catch (error) {
    if (error instanceof LymphoscopeError) throw error;
    // libvips' own words stay in `details` for the log; the message says what the user can do.
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw unsupportedImage(
      `The ${name} file could not be decoded: it is truncated or corrupt. Re-save it and retry.`,
      {
        format: info.format,
        reason,
      },
    );
  }
}
