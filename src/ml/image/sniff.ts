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

/**
 * How much compressed image data a file holds, and the least that could encode the size its header
 * declares. A header is free to lie: a few hundred bytes of JPEG can claim 4096x4096, and the decoder
 * then fills the missing data with grey, spending seconds on pixels nobody sent.
 */
interface Coverage {
  dataBytes: number;
  minDataBytes: number;
}
type Sniffed = ImageInfo & { coverage?: Coverage };

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

/**
 * Refuses image data that cannot cover the size the header declares (see Coverage), after the
 * dimensions, so a claim over the limits still says PAYLOAD_TOO_LARGE.
 */
function checkCoverage(sniffed: Sniffed, limits: ImageLimits): ImageInfo {
  const { format, width, height } = checkDimensions(sniffed, limits);
  const coverage = sniffed.coverage;
  if (coverage && coverage.dataBytes < coverage.minDataBytes) {
    throw unsupportedImage(
      `The ${IMAGE_FORMAT_NAMES[format]} file claims ${width}x${height} pixels but holds ${coverage.dataBytes} bytes of image data; that size needs at least ${coverage.minDataBytes}. Upload the complete file.`,
      { format, width, height, ...coverage },
    );
  }
  return { format, width, height };
}

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

const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/**
 * Deflate cannot do better than 1032:1 (a 258-byte match coded in two 1-bit codes), so a complete PNG
 * holds at least its filtered scanlines / 1032 bytes of IDAT.
 */
const DEFLATE_MAX_RATIO = 1032;

/** Sums the bytes present in IDAT chunks; walks chunk headers only (one step per chunk). */
function pngDataBytes(bytes: Uint8Array, view: DataView): number {
  let total = 0;
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = view.getUint32(at);
    const type = ascii(bytes, at + 4, at + 8);
    if (type === 'IDAT') total += Math.min(length, bytes.length - at - 8);
    if (type === 'IEND') break;
    at += 12 + length;
  }
  return total;
}

function sniffPng(bytes: Uint8Array): Sniffed {
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
  const scanlineBytes = height * (1 + Math.ceil((width * PNG_CHANNELS[colorType] * bitDepth) / 8));
  return {
    format: 'png',
    width,
    height,
    coverage: {
      dataBytes: pngDataBytes(bytes, view),
      minDataBytes: Math.ceil(scanlineBytes / DEFLATE_MAX_RATIO),
    },
  };
}

function isJpegFrameMarker(marker: number): boolean {
  // SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Baseline, extended, progressive and lossless Huffman-coded frames: what libjpeg reads. */
const HUFFMAN_FRAMES: ReadonlySet<number> = new Set([0xc0, 0xc1, 0xc2, 0xc3]);

/**
 * Counts the entropy-coded bytes of the scan starting at `from`: up to the next marker that is neither
 * a stuffed 0xFF00 nor a restart (RSTn). Returns the count and where that marker starts.
 */
function jpegScanBytes(bytes: Uint8Array, from: number): { count: number; next: number } {
  let at = from;
  for (;;) {
    const ff = bytes.indexOf(0xff, at);
    if (ff < 0 || ff + 1 >= bytes.length) return { count: bytes.length - from, next: bytes.length };
    const after = bytes[ff + 1];
    if (after === 0x00 || (after >= 0xd0 && after <= 0xd7) || after === 0xff) {
      at = ff + 1;
      continue;
    }
    return { count: ff - from, next: ff };
  }
}

/**
 * Walks the segments to the frame header (size, components), then on through every scan, counting the
 * entropy-coded bytes. Every component's DC coefficients are coded at least once, at least one bit per
 * 8x8 block with Huffman coding, so a complete file holds at least one bit per block of every component.
 * Arithmetic-coded and hierarchical frames are refused: libjpeg does not read hierarchical ones, and
 * arithmetic coding has no such floor.
 */
function sniffJpeg(bytes: Uint8Array): Sniffed {
  const length = bytes.length;
  let info: ImageInfo | null = null;
  let minBits = 0;
  let dataBytes = 0;
  let at = 2;
  // Each step moves `at` forward by at least one byte, so the walk ends within `length` steps.
  for (;;) {
    if (at >= length) {
      if (info) break;
      throw truncated('jpeg', 'it ends before the frame header');
    }
    if (bytes[at] !== 0xff) {
      if (info) break; // the decoder reports what follows; the coverage is counted
      throw corrupt('jpeg', `expected a marker at byte ${at}`);
    }
    while (at < length && bytes[at] === 0xff) at++; // fill bytes
    if (at >= length) {
      if (info) break;
      throw truncated('jpeg', 'it ends before the frame header');
    }
    const marker = bytes[at++];
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no payload
    if (marker === 0xd9) {
      if (info) break;
      throw corrupt('jpeg', 'the image data starts before the frame header');
    }
    if (marker === 0xda && !info) throw corrupt('jpeg', 'the image data starts before the frame header');
    if (at + 2 > length) {
      if (info) break;
      throw truncated('jpeg', 'a segment header is cut off');
    }
    const segmentLength = (bytes[at] << 8) | bytes[at + 1];
    if (segmentLength < 2) throw corrupt('jpeg', `a segment at byte ${at} has length ${segmentLength}`);
    if (marker === 0xda) {
      const scan = jpegScanBytes(bytes, Math.min(at + segmentLength, length));
      dataBytes += scan.count;
      at = scan.next;
      continue;
    }
    if (isJpegFrameMarker(marker) && !info) {
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
      if (!HUFFMAN_FRAMES.has(marker)) {
        throw unsupportedImage(
          'Arithmetic-coded and hierarchical JPEGs are not supported. Re-save it as a standard JPEG or a PNG.',
          { format: 'jpeg' },
        );
      }
      minBits = jpegMinimumBits(bytes, at, segmentLength, width, height);
      info = { format: 'jpeg', width, height };
    }
    at += segmentLength;
  }
  if (!info) throw truncated('jpeg', 'it ends before the frame header');
  // Half the true floor, as a margin for encoders we have not met; a lying header is far below it.
  return { ...info, coverage: { dataBytes, minDataBytes: Math.floor(minBits / 16) } };
}

/** One bit per 8x8 block of every component, from the frame header's sampling factors. */
function jpegMinimumBits(
  bytes: Uint8Array,
  at: number,
  segmentLength: number,
  width: number,
  height: number,
): number {
  const components = bytes[at + 7] ?? 0;
  if (segmentLength < 8 + 3 * components || at + 8 + 3 * components > bytes.length) {
    throw corrupt('jpeg', 'the frame header lists more components than it holds');
  }
  const sampling: Array<{ h: number; v: number }> = [];
  for (let i = 0; i < components; i++) {
    const factors = bytes[at + 8 + 3 * i + 1];
    sampling.push({ h: factors >> 4 || 1, v: factors & 0x0f || 1 });
  }
  const hMax = Math.max(1, ...sampling.map((c) => c.h));
  const vMax = Math.max(1, ...sampling.map((c) => c.v));
  let bits = 0;
  for (const { h, v } of sampling) {
    bits += Math.ceil(Math.ceil((width * h) / hMax) / 8) * Math.ceil(Math.ceil((height * v) / vMax) / 8);
  }
  return bits;
}

const TIFF_IMAGE_WIDTH = 256;
const TIFF_IMAGE_LENGTH = 257;
const TIFF_COMPRESSION = 259;
const TIFF_STRIP_OFFSETS = 273;
const TIFF_STRIP_BYTE_COUNTS = 279;
const TIFF_TILE_OFFSETS = 324;
const TIFF_TILE_BYTE_COUNTS = 325;
const TIFF_SHORT = 3;
const TIFF_LONG = 4;
/**
 * The most pixels one byte of strip data can stand for, by compression: uncompressed holds at least one
 * bit per pixel; JPEG (6, 7) at least one bit per 8x8 block, halved as a margin; deflate (8, 32946) at
 * most 1032:1 on at least one bit per pixel. LZW, PackBits and the fax codings have no floor here:
 * libtiff refuses their strips when they decode short (it fills short JPEG strips, hence the floor).
 */
const TIFF_PIXELS_PER_BYTE: ReadonlyMap<number, number> = new Map([
  [1, 8],
  [6, 1024],
  [7, 1024],
  [8, 8 * DEFLATE_MAX_RATIO],
  [32946, 8 * DEFLATE_MAX_RATIO],
]);

/**
 * Reads the image directory: size, compression, and where the strips (or tiles) of pixel data lie. Each
 * strip must lie inside the file: a header that points past the end claims data the file does not hold.
 * The strips must also hold what the compression needs for the size claimed (TIFF_PIXELS_PER_BYTE).
 */
function sniffTiff(bytes: Uint8Array): Sniffed {
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
  let compression = 1;
  const arrays = new Map<number, number[]>();
  /** The values of an entry of SHORTs or LONGs: inline when they fit in 4 bytes, else at an offset. */
  const values = (entry: number): number[] => {
    const type = view.getUint16(entry + 2, little);
    const count = view.getUint32(entry + 4, little);
    const size = type === TIFF_SHORT ? 2 : type === TIFF_LONG ? 4 : 0;
    if (size === 0) throw corrupt('tiff', `tag ${view.getUint16(entry, little)} has type ${type}`);
    const start = count * size <= 4 ? entry + 8 : view.getUint32(entry + 8, little);
    if (start + count * size > bytes.length) throw truncated('tiff', 'a strip table runs past the end');
    return Array.from({ length: count }, (_, i) =>
      size === 2 ? view.getUint16(start + i * 2, little) : view.getUint32(start + i * 4, little),
    );
  };
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    const tag = view.getUint16(entry, little);
    if (
      tag === TIFF_STRIP_OFFSETS ||
      tag === TIFF_STRIP_BYTE_COUNTS ||
      tag === TIFF_TILE_OFFSETS ||
      tag === TIFF_TILE_BYTE_COUNTS
    ) {
      arrays.set(tag, values(entry));
      continue;
    }
    if (tag !== TIFF_IMAGE_WIDTH && tag !== TIFF_IMAGE_LENGTH && tag !== TIFF_COMPRESSION) continue;
    const type = view.getUint16(entry + 2, little);
    const value =
      type === TIFF_SHORT
        ? view.getUint16(entry + 8, little)
        : type === TIFF_LONG
          ? view.getUint32(entry + 8, little)
          : 0;
    if (tag === TIFF_IMAGE_WIDTH) width = value;
    else if (tag === TIFF_IMAGE_LENGTH) height = value;
    else compression = value;
  }
  if (width === 0 || height === 0) throw corrupt('tiff', 'the image width or height is missing or 0');
  const offsets = arrays.get(TIFF_STRIP_OFFSETS) ?? arrays.get(TIFF_TILE_OFFSETS);
  const counts = arrays.get(TIFF_STRIP_BYTE_COUNTS) ?? arrays.get(TIFF_TILE_BYTE_COUNTS);
  // Without strip tables the dimensions are all there is to check (the decoder refuses the rest).
  if (!offsets || !counts) return { format: 'tiff', width, height };
  let dataBytes = 0;
  for (let i = 0; i < Math.min(offsets.length, counts.length); i++) {
    if (offsets[i] + counts[i] > bytes.length) {
      throw truncated('tiff', `its image data runs to byte ${offsets[i] + counts[i]} of ${bytes.length}`);
    }
    dataBytes += counts[i];
  }
  const minDataBytes = Math.ceil((width * height) / (TIFF_PIXELS_PER_BYTE.get(compression) ?? Infinity));
  return { format: 'tiff', width, height, coverage: { dataBytes, minDataBytes } };
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
 * cost of a few comparisons. It also checks that the file holds enough image data for the size its
 * header declares (every row of a BMP; a lower bound on the compressed data of the others, see
 * Coverage), so a small file claiming 4096x4096 is refused before a decoder fills it in. One pass over
 * the file at most (JPEG scans are searched for their end marker).
 *
 * Throws LymphoscopeError: UNSUPPORTED_IMAGE (empty, unknown or unsupported format, corrupt or
 * truncated header, too little data for the size) or PAYLOAD_TOO_LARGE (bytes or dimensions over the
 * limits).
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
  if (startsWith(bytes, PNG_SIGNATURE)) return checkCoverage(sniffPng(bytes), limits);
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return checkCoverage(sniffJpeg(bytes), limits);
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) {
    return checkCoverage(sniffTiff(bytes), limits);
  }
  if (startsWith(bytes, [0x49, 0x49, 0x2b, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2b])) {
    throw unsupportedImage(`BigTIFF files are not supported; save a classic TIFF or a PNG.`, {
      format: 'tiff',
    });
  }
  throw unsupportedImage(`${describeUnknown(bytes)} ${ACCEPTED}`);
}
