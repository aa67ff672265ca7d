import { promisify } from 'node:util';
import { constants as zlibConstants, crc32, deflate } from 'node:zlib';
import { badInput } from '../../errors';
import type { RgbImage } from '../image/types';
import { wasmKernel, MemoryLayout } from '../wasm/kernel';
import { OVERLAY_WASM } from '../wasm/kernels.generated';
import { JET } from './jet-scale';

export { JET };

// Read once: inside a sandboxed global (Jest's vm context) every lookup of the global `Math` costs
// about 200 times more, and axisSamples below runs per image column and row.
const { floor, max, min, round } = Math;

/**
 * Bilinear sampling positions along one axis of a `size`-long map for `length` output pixels, at
 * pixel-centre coordinates: lower index, upper index and weight of the upper one. Computed once per
 * axis rather than per pixel: the overlay kernel draws 200,000 pixels for a C-NMC cell, within a
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
 * The jet scale as the overlay kernel reads it: per stop, 8 float64 values, its red, green and blue and a
 * 0, then the next stop's minus its own (the same values drawOverlay's JavaScript took the differences of).
 */
const JET_TABLE = Float64Array.from({ length: (JET.length - 1) * 8 }, (_, i) => {
  const stop = i >> 3;
  const channel = i & 7;
  if (channel === 3 || channel === 7) return 0;
  return channel < 3 ? JET[stop][channel] : JET[stop + 1][channel - 4] - JET[stop][channel - 4];
});

/** The image rows drawn per call of the kernel: its memory holds at most about this many bytes of them. */
const BAND_BYTES = 2 << 20;

type OverlayFunctions = { overlay: (...args: number[]) => void };

/**
 * The overlay kernel (src/ml/wasm/overlay.wat), its jet table at 0. Bands keep a call's memory near
 * BAND_BYTES plus the tables (a few hundred KB for the largest image the API takes), so one instance is kept.
 */
const overlayKernel = wasmKernel<OverlayFunctions>(OVERLAY_WASM, {
  retainBytes: 2 * BAND_BYTES,
  init: (memory) => new Float64Array(memory.buffer, 0, JET_TABLE.length).set(JET_TABLE),
});

/**
 * renderHeatmapPng's overlay, as PNG scanlines: each row starts with its filter type (Sub), and every byte
 * is stored as PNG's Sub filter stores it (minus the same channel of the pixel to its left, modulo 256).
 * pngOfScanlines deflates them.
 *
 * Drawn by a WebAssembly kernel (src/ml/wasm/overlay.wat), band by band of rows, in the arithmetic this
 * function had in JavaScript: the map is interpolated between the two map rows around an image row, then
 * between the two columns around a pixel; where the heat is above 0 the pixel is (1 - 0.6 heat) x the
 * brightened cell + 0.6 heat x the jet colour, rounded; elsewhere the brightened cell alone, rounded. Half
 * the CPU of the JavaScript loop, the same bytes (docs/PERFORMANCE.md, "The analysis of one cell, fourth
 * pass").
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
  const columns = axisSamples(width, heatmapSize);
  const rows = axisSamples(height, heatmapSize);
  const rowBytes = width * 3;
  const stride = rowBytes + 1;
  const bandRows = max(1, min(height, floor(BAND_BYTES / (rowBytes + stride))));

  // The kernel's memory: the jet table at 0, then this call's tables, then a band of pixels and scanlines.
  const layout = new MemoryLayout(JET_TABLE.byteLength);
  const at = {
    bright: layout.place(256 * 8),
    plain: layout.place(256),
    colLo: layout.place(width * 4),
    colUp: layout.place(width * 4),
    colW: layout.place(width * 8),
    rowLo: layout.place(height * 4),
    rowUp: layout.place(height * 4),
    rowW: layout.place(height * 8),
    heat: layout.place(heatmap.length * 4),
    line: layout.place(heatmapSize * 8),
    pix: layout.place(bandRows * rowBytes),
    out: layout.place(bandRows * stride),
  };
  const { memory, functions } = overlayKernel(layout.end);
  const heap = memory.buffer;
  new Float64Array(heap, at.bright, 256).set(brightened);
  new Uint8Array(heap, at.plain, 256).set(plain);
  new Int32Array(heap, at.colLo, width).set(columns.lower);
  new Int32Array(heap, at.colUp, width).set(columns.upper);
  new Float64Array(heap, at.colW, width).set(columns.weight);
  new Int32Array(heap, at.rowLo, height).set(rows.lower);
  new Int32Array(heap, at.rowUp, height).set(rows.upper);
  new Float64Array(heap, at.rowW, height).set(rows.weight);
  new Float32Array(heap, at.heat, heatmap.length).set(heatmap);

  const scanlines = Buffer.allocUnsafe(stride * height);
  for (let y0 = 0; y0 < height; y0 += bandRows) {
    const y1 = min(height, y0 + bandRows);
    new Uint8Array(heap, at.pix, (y1 - y0) * rowBytes).set(pixels.subarray(y0 * rowBytes, y1 * rowBytes));
    // prettier-ignore
    functions.overlay(
      width, y0, y1, heatmapSize, at.pix, at.out, at.heat, at.line,
      at.colLo, at.colUp, at.colW, at.rowLo, at.rowUp, at.rowW, at.bright, at.plain, 0, JET.length - 1,
    );
    scanlines.set(new Uint8Array(heap, at.out, (y1 - y0) * stride), y0 * stride);
  }
  return scanlines;
}

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
