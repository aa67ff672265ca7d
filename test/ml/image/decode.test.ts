import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { ErrorCode, LymphoscopeError } from '../../../src/errors';
import { decodeImage, DEFAULT_IMAGE_LIMITS, sniffImage, type RgbImage } from '../../../src/ml/image/decode';
import { encodeBmp, syntheticCell } from '../../../src/ml/data/synthetic';

const SAMPLE = path.join(__dirname, '../../../data/cnmc-sample');
const ALL_CELL = path.join(SAMPLE, 'all/UID_11_1_1_all.bmp');
const HEM_CELL = path.join(SAMPLE, 'hem/UID_H10_47_2_hem.bmp');

/** The RGB of pixel (x, y), y counted from the top, read straight from a bottom-up 24-bit BMP's bytes. */
function rawBmpPixel(file: Buffer, x: number, y: number): number[] {
  const offset = file.readUInt32LE(10);
  const width = file.readInt32LE(18);
  const height = file.readInt32LE(22);
  const stride = Math.ceil((width * 3) / 4) * 4;
  const at = offset + (height - 1 - y) * stride + x * 3;
  return [file[at + 2], file[at + 1], file[at]];
}

const pixel = (img: RgbImage, x: number, y: number) =>
  Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

/** Counted rather than compared with toEqual, whose diff of a 600 KB array takes minutes to print. */
function differingBytes(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

function meanAbsDifference(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

async function expectError(promise: Promise<unknown>, code: ErrorCode, message: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LymphoscopeError);
  expect((error as LymphoscopeError).code).toBe(code);
  expect((error as LymphoscopeError).message).toMatch(message);
}

describe('decodeImage on real C-NMC cells', () => {
  it.each([ALL_CELL, HEM_CELL])('decodes %s to the pixels stored in the file', async (file) => {
    const bytes = readFileSync(file);
    const img = await decodeImage(bytes);
    expect(img).toMatchObject({ format: 'bmp', width: 450, height: 450 });
    expect(img.data).toHaveLength(450 * 450 * 3);
    for (const [x, y] of [
      [225, 225],
      [200, 180],
      [0, 0],
      [449, 449],
      [449, 0],
      [10, 300],
    ]) {
      expect(pixel(img, x, y)).toEqual(rawBmpPixel(bytes, x, y));
    }
    // The cell sits on black: corners are background, the centre is a stained (purple: blue > green) cell.
    for (const [x, y] of [
      [2, 2],
      [447, 2],
      [2, 447],
      [447, 447],
    ]) {
      expect(Math.max(...pixel(img, x, y))).toBeLessThanOrEqual(3);
    }
    const [r, g, b] = pixel(img, 225, 225);
    expect(b).toBeGreaterThan(g);
    expect(r).toBeGreaterThan(g);
  });

  it('decodes every sample cell to the bytes of its file, pixel by pixel', async () => {
    // The decoder skips the swap of blue and red where four pixels are black; every pixel of all 63
    // files against the file's own bytes.
    const { sampleImages } = await import('../../helpers/sample');
    for (const { bytes } of sampleImages()) {
      const img = await decodeImage(bytes);
      // rawBmpPixel's reading, one row at a time: bottom-up rows of BGR, padded to 4 bytes.
      const offset = bytes.readUInt32LE(10);
      const stride = Math.ceil((img.width * 3) / 4) * 4;
      const expected = new Uint8Array(img.data.length);
      for (let y = 0, i = 0; y < img.height; y++) {
        for (let x = 0, at = offset + (img.height - 1 - y) * stride; x < img.width; x++, at += 3, i += 3) {
          expected[i] = bytes[at + 2];
          expected[i + 1] = bytes[at + 1];
          expected[i + 2] = bytes[at];
        }
      }
      expect(Buffer.from(expected).equals(img.data)).toBe(true);
    }
  });

  it('decodes PNG, JPEG and TIFF copies of a real cell to nearly the same pixels', async () => {
    const bmp = await decodeImage(readFileSync(HEM_CELL));
    const raw = { raw: { width: 450, height: 450, channels: 3 as const } };
    const png = await decodeImage(await sharp(bmp.data, raw).png().toBuffer());
    const tiff = await decodeImage(await sharp(bmp.data, raw).tiff({ compression: 'lzw' }).toBuffer());
    const jpeg = await decodeImage(await sharp(bmp.data, raw).jpeg({ quality: 92 }).toBuffer());
    expect(png.format).toBe('png');
    expect(differingBytes(png.data, bmp.data)).toBe(0); // lossless
    expect(tiff.format).toBe('tiff');
    expect(differingBytes(tiff.data, bmp.data)).toBe(0);
    expect(jpeg).toMatchObject({ format: 'jpeg', width: 450, height: 450 });
    const error = meanAbsDifference(jpeg.data, bmp.data);
    expect(error).toBeGreaterThan(0);
    expect(error).toBeLessThan(2);
  });

  it('turns greyscale, alpha and 16-bit PNGs into 8-bit RGB, transparent pixels black', async () => {
    // 4x2 RGBA: the left half fully transparent (over a colour that must not show), the right half opaque.
    const pixels = Buffer.alloc(4 * 2 * 4);
    for (let p = 0; p < 8; p++) pixels.set(p % 4 < 2 ? [90, 250, 90, 0] : [200, 100, 50, 255], p * 4);
    const rgba = await sharp(pixels, { raw: { width: 4, height: 2, channels: 4 } })
      .png()
      .toBuffer();
    const decoded = await decodeImage(rgba);
    expect(pixel(decoded, 3, 0)).toEqual([200, 100, 50]);
    expect(pixel(decoded, 0, 0)).toEqual([0, 0, 0]);
    const grey = await decodeImage(await sharp(rgba).greyscale().png().toBuffer());
    const [gr, gg, gb] = pixel(grey, 3, 1);
    expect(gr).toBe(gg);
    expect(gg).toBe(gb);
    const deep = await decodeImage(await sharp(rgba).toColourspace('rgb16').png().toBuffer());
    expect(deep.data).toHaveLength(4 * 2 * 3);
    expect(pixel(deep, 3, 1)).toEqual([200, 100, 50]);
  });

  it('round-trips a synthetic cell through encodeBmp', async () => {
    const cell = syntheticCell(7, { label: 1, size: 97 }); // odd width: rows are padded
    const decoded = await decodeImage(encodeBmp(cell));
    expect(decoded.width).toBe(97);
    expect(differingBytes(decoded.data, cell.data)).toBe(0);
  });
});

/** A BMP writer for the variants C-NMC does not use, built field by field. */
function writeBmp(opts: {
  width: number;
  height: number;
  bpp: 1 | 4 | 8 | 16 | 24 | 32;
  topDown?: boolean;
  dibSize?: 12 | 40 | 108 | 124;
  bitfields?: [number, number, number];
  palette?: number[][];
  /** The stored value of pixel (x, y): an RGB triple, a palette index or a raw 16/32-bit word. */
  value: (x: number, y: number) => number[] | number;
}): Buffer {
  const { width, height, bpp } = opts;
  const dibSize = opts.dibSize ?? 40;
  const core = dibSize === 12;
  const masksAfterHeader = opts.bitfields && dibSize === 40 ? 12 : 0;
  const paletteBytes = (opts.palette?.length ?? 0) * (core ? 3 : 4);
  const offset = 14 + dibSize + masksAfterHeader + paletteBytes;
  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  const file = Buffer.alloc(offset + stride * height);
  file.write('BM', 0, 'latin1');
  file.writeUInt32LE(file.length, 2);
  file.writeUInt32LE(offset, 10);
  file.writeUInt32LE(dibSize, 14);
  if (core) {
    file.writeUInt16LE(width, 18);
    file.writeUInt16LE(height, 20);
    file.writeUInt16LE(1, 22);
    file.writeUInt16LE(bpp, 24);
  } else {
    file.writeInt32LE(width, 18);
    file.writeInt32LE(opts.topDown ? -height : height, 22);
    file.writeUInt16LE(1, 26);
    file.writeUInt16LE(bpp, 28);
    file.writeUInt32LE(opts.bitfields ? 3 : 0, 30);
    file.writeUInt32LE(opts.palette?.length ?? 0, 46);
    opts.bitfields?.forEach((mask, i) => file.writeUInt32LE(mask >>> 0, 54 + i * 4));
  }
  opts.palette?.forEach(([r, g, b], i) => {
    const at = 14 + dibSize + masksAfterHeader + i * (core ? 3 : 4);
    file[at] = b;
    file[at + 1] = g;
    file[at + 2] = r;
  });
  for (let y = 0; y < height; y++) {
    const row = offset + (opts.topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const value = opts.value(x, y);
      if (bpp === 24) {
        const [r, g, b] = value as number[];
        file[row + x * 3] = b;
        file[row + x * 3 + 1] = g;
        file[row + x * 3 + 2] = r;
      } else if (bpp === 32) file.writeUInt32LE((value as number) >>> 0, row + x * 4);
      else if (bpp === 16) file.writeUInt16LE(value as number, row + x * 2);
      else {
        const bit = x * bpp;
        file[row + (bit >> 3)] |= (value as number) << (8 - bpp - (bit % 8));
      }
    }
  }
  return file;
}

describe('the BMP decoder', () => {
  const width = 5; // 15 bytes of RGB per row: every 24-bit row carries a byte of padding
  const height = 3;
  const colour = (x: number, y: number) => [x * 50, y * 100, 255 - x * 10 - y];
  const expected = Array.from({ length: height }, (_, y) =>
    Array.from({ length: width }, (_, x) => colour(x, y)),
  ).flat(2);

  it.each([false, true])('reads 24-bit rows with padding (top-down %s)', async (topDown) => {
    const img = await decodeImage(writeBmp({ width, height, bpp: 24, topDown, value: colour }));
    expect(Array.from(img.data)).toEqual(expected);
  });

  it('reads 32-bit BI_RGB (BGRX) with top-down rows', async () => {
    const bytes = writeBmp({
      width,
      height,
      bpp: 32,
      topDown: true,
      value: (x, y) => {
        const [r, g, b] = colour(x, y);
        return (0xee << 24) | (r << 16) | (g << 8) | b; // the X byte is ignored
      },
    });
    expect(Array.from((await decodeImage(bytes)).data)).toEqual(expected);
  });

  it('reads 32-bit BI_BITFIELDS in RGBA order from a V5 header', async () => {
    const bytes = writeBmp({
      width,
      height,
      bpp: 32,
      dibSize: 124,
      bitfields: [0x000000ff, 0x0000ff00, 0x00ff0000],
      value: (x, y) => {
        const [r, g, b] = colour(x, y);
        return (0x80 << 24) | (b << 16) | (g << 8) | r;
      },
    });
    expect(Array.from((await decodeImage(bytes)).data)).toEqual(expected);
  });

  it('reads 16-bit RGB565 bit fields and scales 5 and 6-bit channels to 0-255', async () => {
    const bytes = writeBmp({
      width: 2,
      height: 1,
      bpp: 16,
      bitfields: [0xf800, 0x07e0, 0x001f],
      value: (x) => (x === 0 ? 0xffff : (16 << 11) | (0 << 5) | 31),
    });
    expect(Array.from((await decodeImage(bytes)).data)).toEqual([255, 255, 255, 132, 0, 255]);
  });

  it('reads 8-bit, 4-bit and 1-bit paletted images, including OS/2 core headers', async () => {
    const palette = [
      [0, 0, 0],
      [120, 40, 160],
      [255, 255, 255],
      [10, 200, 30],
    ];
    const index = (x: number, y: number) => (x + y) % 4;
    const want = Array.from({ length: height }, (_, y) =>
      Array.from({ length: width }, (_, x) => palette[index(x, y)]),
    ).flat(2);
    for (const bpp of [8, 4] as const) {
      const img = await decodeImage(writeBmp({ width, height, bpp, palette, value: index }));
      expect(Array.from(img.data)).toEqual(want);
    }
    const core = await decodeImage(
      writeBmp({
        width,
        height,
        bpp: 8,
        dibSize: 12,
        palette: palette.concat(Array(252).fill([0, 0, 0])),
        value: index,
      }),
    );
    expect(Array.from(core.data)).toEqual(want);
    const mono = await decodeImage(
      writeBmp({ width: 10, height: 1, bpp: 1, palette: palette.slice(1, 3), value: (x) => x % 2 }),
    );
    expect(pixel(mono, 0, 0)).toEqual([120, 40, 160]);
    expect(pixel(mono, 9, 0)).toEqual([255, 255, 255]);
  });

  it('refuses a BMP over the dimension limits before reading its pixels', async () => {
    const bytes = writeBmp({ width: 40, height: 30, bpp: 24, value: colour });
    await expectError(
      decodeImage(bytes, { ...DEFAULT_IMAGE_LIMITS, maxWidth: 39 }),
      ErrorCode.PAYLOAD_TOO_LARGE,
      /40x30 pixels; the limit is 39x4096/,
    );
    await expectError(
      decodeImage(bytes, { ...DEFAULT_IMAGE_LIMITS, maxBytes: 100 }),
      ErrorCode.PAYLOAD_TOO_LARGE,
      /limit is 100 bytes/,
    );
  });
});

describe('sniffImage', () => {
  it('reports the format and size of every supported format from the header alone', async () => {
    const base = sharp({ create: { width: 37, height: 23, channels: 3, background: '#803070' } });
    const cases: Array<[Buffer, string]> = [
      [await base.clone().png().toBuffer(), 'png'],
      [await base.clone().jpeg().toBuffer(), 'jpeg'],
      [await base.clone().jpeg({ progressive: true }).toBuffer(), 'jpeg'],
      [await base.clone().tiff().toBuffer(), 'tiff'],
      [await base.clone().tiff({ compression: 'lzw' }).toBuffer(), 'tiff'],
      [encodeBmp({ width: 37, height: 23, data: new Uint8Array(37 * 23 * 3) }), 'bmp'],
    ];
    for (const [bytes, format] of cases) {
      expect(sniffImage(bytes)).toEqual({ format, width: 37, height: 23 });
      // Only the header: a file cut just after it still sniffs.
      expect(
        sniffImage(bytes.subarray(0, format === 'tiff' || format === 'bmp' ? bytes.length : 700)),
      ).toEqual({
        format,
        width: 37,
        height: 23,
      });
    }
  });

  it('accepts honest images compressed as far as their encoders go (the data floors are lower bounds)', async () => {
    // Flat black 2048x2048: the least data per pixel each encoder can write. A floor above any of these
    // would refuse real images; the lying headers in the bad-image corpus sit far below them.
    const black = sharp({ create: { width: 2048, height: 2048, channels: 3, background: '#000000' } });
    const encoded: Array<[string, Promise<Buffer>]> = [
      ['jpeg', black.clone().jpeg({ quality: 1 }).toBuffer()],
      [
        'jpeg progressive',
        black.clone().jpeg({ quality: 1, progressive: true, optimiseCoding: true }).toBuffer(),
      ],
      ['mozjpeg', black.clone().jpeg({ quality: 1, mozjpeg: true }).toBuffer()],
      ['jpeg grey', black.clone().greyscale().jpeg({ quality: 1 }).toBuffer()],
      ['png', black.clone().png({ compressionLevel: 9 }).toBuffer()],
      ['png 1-bit palette', black.clone().png({ compressionLevel: 9, palette: true, colours: 2 }).toBuffer()],
      ['tiff deflate', black.clone().tiff({ compression: 'deflate' }).toBuffer()],
      ['tiff jpeg', black.clone().tiff({ compression: 'jpeg', quality: 1 }).toBuffer()],
      ['tiff lzw tiled', black.clone().tiff({ compression: 'lzw', tile: true }).toBuffer()],
    ];
    for (const [name, bytes] of encoded) {
      expect([name, sniffImage(await bytes)]).toEqual([
        name,
        expect.objectContaining({ width: 2048, height: 2048 }),
      ]);
    }
  });

  it('agrees with the real sample: every C-NMC file is a 450x450 BMP', () => {
    const manifest = readFileSync(path.join(SAMPLE, 'MANIFEST.csv'), 'utf8').trim().split('\n').slice(1);
    for (const line of manifest) {
      const file = line.split(',')[0];
      expect(sniffImage(readFileSync(path.join(SAMPLE, file)))).toEqual({
        format: 'bmp',
        width: 450,
        height: 450,
      });
    }
  });
});
