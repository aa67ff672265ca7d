import { crc32 } from 'node:zlib';
import { tooLarge, unsupportedImage } from '../../errors';
import { parseBmpHeader } from './bmp';
import { DEFAULT_IMAGE_LIMITS, IMAGE_FORMAT_NAMES, type ImageFormat, type ImageLimits } from './types';

export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
}

const ACCEPTED = 'Send a BMP, PNG, JPEG or TIFF image.';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

const truncated = (format: ImageFormat, what: string) =>
  unsupportedImage(
    `The ${IMAGE_FORMAT_NAMES[format]} file is truncated: ${what}. Upload the complete file.`,
    {
      format,
    },
  );
const corrupt = (format: ImageFormat, what: string) =>
  unsupportedImage(
    `The ${IMAGE_FORMAT_NAMES[format]} header is corrupt: ${what}. Re-save the image and retry.`,
    {
      format,
    },
  );

function checkDimensions(info: ImageInfo, limits: ImageLimits): ImageInfo {
  const { width, height } = info;
  if (width > limits.maxWidth || height > limits.maxHeight) {
    throw tooLarge(
      `The image is ${width}x${height} pixels; the limit is ${limits.maxWidth}x${limits.maxHeight}. Crop or downscale it.`,
      { format: info.format, width, height, maxWidth: limits.maxWidth, maxHeight: limits.maxHeight },
    );
  }
  return info;
}

const PNG_BIT_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

function sniffPng(bytes: Uint8Array): ImageInfo {
  // Signature (8), then the IHDR chunk: length (4), type (4), 13 bytes of data, CRC (4).
  if (bytes.length < 33) throw truncated('png', 'the IHDR header is incomplete');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8) !== 13 || ascii(bytes, 12, 16) !== 'IHDR')
    throw corrupt('png', 'the first chunk is not IHDR');
  if (crc32(bytes.subarray(12, 29)) !== view.getUint32(29))
    throw corrupt('png', 'the IHDR checksum does not match');
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    throw corrupt('png', `the size ${width}x${height} is invalid`);
  }
  const bitDepth = bytes[24];
  const colorType = bytes[25];
  if (!PNG_BIT_DEPTHS[colorType]?.includes(bitDepth)) {
    throw corrupt('png', `colour type ${colorType} with bit depth ${bitDepth} is invalid`);
  }
  return { format: 'png', width, height };
}

function isJpegFrameMarker(marker: number): boolean {
  // SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function sniffJpeg(bytes: Uint8Array): ImageInfo {
  const length = bytes.length;
  let at = 2;
  // Each step moves `at` forward by at least one byte, so the walk ends within `length` steps.
  for (;;) {
    if (at >= length) throw truncated('jpeg', 'it ends before the frame header');
    if (bytes[at] !== 0xff) throw corrupt('jpeg', `expected a marker at byte ${at}`);
    while (at < length && bytes[at] === 0xff) at++; // fill bytes
    if (at >= length) throw truncated('jpeg', 'it ends before the frame header');
    const marker = bytes[at++];
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no payload
    if (marker === 0xd9 || marker === 0xda)
      throw corrupt('jpeg', 'the image data starts before the frame header');
    if (at + 2 > length) throw truncated('jpeg', 'a segment header is cut off');
    const segmentLength = (bytes[at] << 8) | bytes[at + 1];
    if (segmentLength < 2) throw corrupt('jpeg', `a segment at byte ${at} has length ${segmentLength}`);
    if (isJpegFrameMarker(marker)) {
      if (segmentLength < 8) throw corrupt('jpeg', 'the frame header is too short');
      if (at + 8 > length) throw truncated('jpeg', 'the frame header is cut off');
      const height = (bytes[at + 3] << 8) | bytes[at + 4];
      const width = (bytes[at + 5] << 8) | bytes[at + 6];
      if (height === 0) {
        throw unsupportedImage('JPEGs that give their height after the image data (DNL) are not supported.', {
          format: 'jpeg',
        });
      }
      if (width === 0) throw corrupt('jpeg', 'the width is 0 pixels');
      return { format: 'jpeg', width, height };
    }
    at += segmentLength;
  }
}

const TIFF_IMAGE_WIDTH = 256;
const TIFF_IMAGE_LENGTH = 257;
const TIFF_SHORT = 3;
const TIFF_LONG = 4;

function sniffTiff(bytes: Uint8Array): ImageInfo {
  if (bytes.length < 8) throw truncated('tiff', 'the header is incomplete');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = bytes[0] === 0x49;
  const ifd = view.getUint32(4, little);
  if (ifd < 8) throw corrupt('tiff', `the first directory offset ${ifd} points into the header`);
  if (ifd + 2 > bytes.length) throw truncated('tiff', 'the image directory is missing');
  const entries = view.getUint16(ifd, little);
  if (ifd + 2 + entries * 12 > bytes.length) throw truncated('tiff', 'the image directory is cut off');
  let width = 0;
  let height = 0;
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    const tag = view.getUint16(entry, little);
    if (tag !== TIFF_IMAGE_WIDTH && tag !== TIFF_IMAGE_LENGTH) continue;
    const type = view.getUint16(entry + 2, little);
    const value =
      type === TIFF_SHORT
        ? view.getUint16(entry + 8, little)
        : type === TIFF_LONG
          ? view.getUint32(entry + 8, little)
          : 0;
    if (tag === TIFF_IMAGE_WIDTH) width = value;
    else height = value;
  }
  if (width === 0 || height === 0) throw corrupt('tiff', 'the image width or height is missing or 0');
  return { format: 'tiff', width, height };
}

/** Names formats we recognise but do not read, so the message says what the file is. */
function describeUnknown(bytes: Uint8Array): string {
  if (startsWith(bytes, [0x47, 0x49, 0x46, 0x38])) return 'GIF images are not supported.';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') {
    return 'WebP images are not supported.';
  }
  if (startsWith(bytes, [0x25, 0x50, 0x44, 0x46])) return 'The file is a PDF, not an image.';
  if (bytes.length >= 12 && ascii(bytes, 4, 8) === 'ftyp')
    return 'HEIC/AVIF and video files are not supported.';
  const head = bytes.subarray(0, 512);
  const printable = head.every(
    (b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f) || b >= 0x80,
  );
  if (printable) return 'The file looks like text, not an image.';
  const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `The file is not a recognised image (it starts with bytes ${magic}).`;
}

/**
 * Identifies an image from its header alone: format, width and height. Validates the magic bytes, the
 * header's internal consistency and the dimensions against `limits` before the caller allocates a
 * pixel buffer, so a small file claiming 100000x100000 pixels is refused with PAYLOAD_TOO_LARGE at the
 * cost of a few comparisons. For BMP, whose header is all there is to validate, it also checks that
 * the pixel data fits in the file.
 *
 * Throws LymphoscopeError: UNSUPPORTED_IMAGE (empty, unknown or unsupported format, corrupt or
 * truncated header) or PAYLOAD_TOO_LARGE (bytes or dimensions over the limits).
 */
export function sniffImage(bytes: Uint8Array, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): ImageInfo {
  if (bytes.length === 0) throw unsupportedImage(`The file is empty (0 bytes). ${ACCEPTED}`);
  if (bytes.length > limits.maxBytes) {
    throw tooLarge(
      `The file is ${bytes.length} bytes; the limit is ${limits.maxBytes} bytes. Compress, crop or downscale it.`,
      { bytes: bytes.length, maxBytes: limits.maxBytes },
    );
  }
  if (startsWith(bytes, [0x42, 0x4d])) {
    const { width, height } = parseBmpHeader(bytes, limits);
    return { format: 'bmp', width, height };
  }
  if (startsWith(bytes, PNG_SIGNATURE)) return checkDimensions(sniffPng(bytes), limits);
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return checkDimensions(sniffJpeg(bytes), limits);
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) {
    return checkDimensions(sniffTiff(bytes), limits);
  }
  if (startsWith(bytes, [0x49, 0x49, 0x2b, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2b])) {
    throw unsupportedImage(`BigTIFF files are not supported; save a classic TIFF or a PNG.`, {
      format: 'tiff',
    });
  }
  throw unsupportedImage(`${describeUnknown(bytes)} ${ACCEPTED}`);
}
