import { promisify } from 'node:util';
import { constants as zlibConstants, crc32, deflate } from 'node:zlib';
import { badInput } from '../../errors';
import type { RgbImage } from '../image/types';
import { JET } from './jet-scale';

export { JET };

const JET_FLAT = Float64Array.from(JET.flat());

// Read once: inside a sandboxed global (Jest's vm context) every lookup of the global `Math` costs
// about 200 times more, and the overlay below runs per pixel.
const { floor, max, min, round } = Math;

/**
 * Bilinear sampling positions along one axis of a `size`-long map for `length` output pixels, at
 * pixel-centre coordinates: lower index, upper index and weight of the upper one. Computed once per
 * axis rather than per pixel: the overlay loop runs 200,000 times for a C-NMC cell, within a
 * latency budget of milliseconds.
 */
function axisSamples(length: number, size: number) {
  const lower = new Int32Array(length);
  const upper = new Int32Array(length);
  const weight = new Float64Array(length);
  const scale = size / length;
  for (let i = 0; i < length; i++) {
    const c = min(size - 1, max(0, (i + 0.5) * scale - 0.5));
    lower[i] = floor(c);
    upper[i] = min(size - 1, lower[i] + 1);
    weight[i] = c - lower[i];
  }
  return { lower, upper, weight };
}

/**
 * A PNG of the cell at its own resolution with the heat map laid over it in the jet colour map. The
 * overlay's opacity follows the heat (up to 60%), so where the model saw nothing the cell shows
 * untouched. C-NMC cells are dark (channel values around 80), so the cell is brightened for display,
 * by at most 3x, until its brightest channel value reaches 255. `brightestValue` is that value when the
 * caller already knows it (findForeground's `brightest`); it must be the image's.
 */
export async function renderHeatmapPng(
  img: RgbImage,
  heatmap: Float32Array,
  heatmapSize: number,
  brightestValue?: number,
): Promise<Buffer> {
  if (img.data.length !== img.width * img.height * 3)
    throw badInput('The image data does not match its size.');
  if (heatmap.length !== heatmapSize * heatmapSize) {
    throw badInput(
      `A ${heatmapSize}x${heatmapSize} heat map has ${heatmapSize ** 2} values; got ${heatmap.length}.`,
    );
  }
  // A whole pass over the image on its own: analyzeCell passes the value findForeground already saw.
  const brightest = max(1, brightestValue ?? brightestChannel(img.data));
  return pngOfScanlines(
    drawOverlay(img.data, img.width, img.height, heatmap, heatmapSize, brightest),
    img.width,
    img.height,
  );
}

/** The highest channel value of an image. */
function brightestChannel(pixels: Uint8Array): number {
  let brightest = 0;
  for (let i = 0; i < pixels.length; i++) if (pixels[i] > brightest) brightest = pixels[i];
  return brightest;
}

/**
 * renderHeatmapPng's overlay, as PNG scanlines. A function of its own, its loop the last thing in it:
 * V8 optimises the loop while it runs (on-stack replacement), and a call after the loop that had not
 * run when it did so sent the optimised code back to the interpreter, on 1 call in 6 (`node
 * --trace-deopt`, the 63 sample cells twice).
 */
function drawOverlay(
  pixels: Uint8Array,
  width: number,
  height: number,
  heatmap: Float32Array,
  heatmapSize: number,
  brightest: number,
): Buffer {
  const gain = min(3, 255 / brightest);
  const brightened = Float64Array.from({ length: 256 }, (_, v) => min(255, v * gain));
  // The same, rounded: where there is no heat, a pixel is a table lookup.
  const plain = Uint8Array.from(brightened, (v) => round(v));
  // The PNG's scanlines, written as the overlay is drawn: each row starts with its filter type, and every
  // byte is stored as PNG's Sub filter stores it (minus the same channel of the pixel to its left, modulo
  // 256; a typed-array store takes the modulo). pngOfScanlines deflates them.
  const stride = width * 3 + 1;
  const scanlines = Buffer.allocUnsafe(stride * height);
  const columns = axisSamples(width, heatmapSize);
  const rows = axisSamples(height, heatmapSize);
  const stops = JET.length - 1;
  // The map interpolated between the two rows around an image row: the bilinear sample is then a
  // blend of two neighbours of this line, and a line of zeros (the background) is skipped whole.
  const line = new Float64Array(heatmapSize);
  for (let y = 0; y < height; y++) {
    const top = rows.lower[y] * heatmapSize;
    const bottom = rows.upper[y] * heatmapSize;
    const fy = rows.weight[y];
    let hot = false;
    for (let j = 0; j < heatmapSize; j++) {
      const value = heatmap[top + j] * (1 - fy) + heatmap[bottom + j] * fy;
      line[j] = value;
      if (value !== 0) hot = true;
    }
    const rowStart = y * width * 3;
    let o = y * stride;
    scanlines[o++] = PNG_FILTER_SUB;
    // The pixel to the left, as drawn; zero left of the first.
    let r = 0;
    let g = 0;
    let b = 0;
    for (let x = 0, i = rowStart; x < width; x++, i += 3, o += 3) {
      let nr: number;
      let ng: number;
      let nb: number;
      let heat = 0;
      if (hot) {
        const fx = columns.weight[x];
        heat = line[columns.lower[x]] * (1 - fx) + line[columns.upper[x]] * fx;
        heat = heat > 1 ? 1 : heat;
      }
      if (!(heat > 0)) {
        // No evidence here (most of a cell, all of the background): the brightened cell alone.
        nr = plain[pixels[i]];
        ng = plain[pixels[i + 1]];
        nb = plain[pixels[i + 2]];
      } else {
        const alpha = 0.6 * heat;
        // The jet colour: linear between the two stops around the heat.
        const position = heat * stops;
        const stop = min(stops - 1, floor(position));
        const f = position - stop;
        const k = stop * 3;
        // Values are in [0, 255.5]: truncation of the value + 0.5 rounds as Math.round does.
        nr =
          ((1 - alpha) * brightened[pixels[i]] +
            alpha * (JET_FLAT[k] + (JET_FLAT[k + 3] - JET_FLAT[k]) * f) +
            0.5) |
          0;
        ng =
          ((1 - alpha) * brightened[pixels[i + 1]] +
            alpha * (JET_FLAT[k + 1] + (JET_FLAT[k + 4] - JET_FLAT[k + 1]) * f) +
            0.5) |
          0;
        nb =
          ((1 - alpha) * brightened[pixels[i + 2]] +
            alpha * (JET_FLAT[k + 2] + (JET_FLAT[k + 5] - JET_FLAT[k + 2]) * f) +
            0.5) |
          0;
      }
      scanlines[o] = nr - r;
      scanlines[o + 1] = ng - g;
      scanlines[o + 2] = nb - b;
      r = nr;
      g = ng;
      b = nb;
    }
  }
  return scanlines;
}

/** PNG's filter type 1: each byte minus the same channel of the pixel to its left. */
const PNG_FILTER_SUB = 1;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const deflateAsync = promisify(deflate);

/**
 * An 8-bit RGB PNG of `width` x `height` from its filtered scanlines (a filter-type byte, then width x 3
 * bytes, per row). Deflated on libuv's thread pool, so the caller's thread goes on meanwhile.
 *
 * zlib's run-length strategy on Sub-filtered rows: a cell's overlay changes little from one pixel to the
 * next, so its Sub bytes are runs of small values. On the demo model's heat maps of the 63 sample cells:
 * 88 KB a heat map instead of 116 KB from libvips' PNG at zlib level 3 without filtering (the encoder
 * before), the same pixels, and about 2 CPU ms for filter and deflate against 3.6 for libvips' encode
 * (docs/PERFORMANCE.md, "The analysis of one cell, third pass").
 */
export async function pngOfScanlines(scanlines: Buffer, width: number, height: number): Promise<Buffer> {
  if (scanlines.length !== (width * 3 + 1) * height)
    throw badInput(`${height} scanlines of a ${width}-pixel RGB row need ${(width * 3 + 1) * height} bytes.`);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per channel
  header[9] = 2; // colour type: RGB
  // Bytes 10-12: deflate compression, adaptive filtering (a filter byte per row), no interlace: all 0.
  // One output chunk big enough for the whole stream: Node's zlib returns to the JavaScript thread
  // between chunks (16 KB by default), and that thread is busy in onnxruntime meanwhile.
  const chunkSize = scanlines.length + (scanlines.length >> 3) + 1024;
  const data = await deflateAsync(scanlines, { strategy: zlibConstants.Z_RLE, chunkSize });
  // Signature and three chunks, each written once into the PNG's one buffer.
  const png = Buffer.allocUnsafe(PNG_SIGNATURE.length + 3 * 12 + header.length + data.length);
  PNG_SIGNATURE.copy(png, 0);
  let at = writeChunk(png, PNG_SIGNATURE.length, 'IHDR', header);
  at = writeChunk(png, at, 'IDAT', data);
  writeChunk(png, at, 'IEND', Buffer.alloc(0));
  return png;
}

/** Writes a PNG chunk (length, type, data, CRC-32 of type and data) into `png` at `at`; answers its end. */
function writeChunk(png: Buffer, at: number, type: string, data: Buffer): number {
  png.writeUInt32BE(data.length, at);
  png.write(type, at + 4, 'ascii');
  data.copy(png, at + 8);
  const end = at + 8 + data.length;
  png.writeUInt32BE(crc32(png.subarray(at + 4, end)), end);
  return end + 4;
}
