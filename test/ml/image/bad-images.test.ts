import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, LymphoscopeError } from '../../../src/errors';
import { decodeImage, DEFAULT_IMAGE_LIMITS, sniffImage } from '../../../src/ml/image/decode';

/**
 * The checked-in corpus of broken files (scripts/make-bad-images.ts). `sniff: true` means the header
 * alone gives the file away, so sniffImage (the upload confirm step) must refuse it too; the others
 * have a sound header and fail only when the pixel data is decoded.
 */
const CORPUS = path.join(__dirname, '../../fixtures/bad-images');
const { UNSUPPORTED_IMAGE, PAYLOAD_TOO_LARGE } = ErrorCode;
const EXPECTED: Record<string, { code: ErrorCode; message: RegExp; sniff: boolean }> = {
  'empty.bmp': { code: UNSUPPORTED_IMAGE, message: /empty \(0 bytes\)/, sniff: true },
  'notes.txt': { code: UNSUPPORTED_IMAGE, message: /looks like text/, sniff: true },
  'random-bytes.png': {
    code: UNSUPPORTED_IMAGE,
    message: /not a recognised image.*Send a BMP, PNG, JPEG or TIFF/,
    sniff: true,
  },
  'animation.gif': { code: UNSUPPORTED_IMAGE, message: /GIF images are not supported/, sniff: true },
  'bigtiff.tif': { code: UNSUPPORTED_IMAGE, message: /BigTIFF/, sniff: true },
  'bmp-truncated.bmp': {
    code: UNSUPPORTED_IMAGE,
    message: /BMP file is truncated: 64x64 pixels need 12342 bytes but the file has 7405/,
    sniff: true,
  },
  'bmp-header-only-half.bmp': { code: UNSUPPORTED_IMAGE, message: /BMP file is truncated/, sniff: true },
  'bmp-unknown-dib-size.bmp': {
    code: UNSUPPORTED_IMAGE,
    message: /corrupt: unknown DIB header size 7/,
    sniff: true,
  },
  'bmp-zero-width.bmp': { code: UNSUPPORTED_IMAGE, message: /width is 0 pixels/, sniff: true },
  'bmp-negative-width.bmp': { code: UNSUPPORTED_IMAGE, message: /width is -64 pixels/, sniff: true },
  'bmp-zero-height.bmp': { code: UNSUPPORTED_IMAGE, message: /height is 0 pixels/, sniff: true },
  'bmp-offset-past-end.bmp': {
    code: UNSUPPORTED_IMAGE,
    message: /pixel data at byte 13342, past the end of the 12342-byte file/,
    sniff: true,
  },
  'bmp-100000x100000.bmp': {
    code: PAYLOAD_TOO_LARGE,
    message: /100000x100000 pixels; the limit is 4096x4096/,
    sniff: true,
  },
  'bmp-rle8.bmp': {
    code: UNSUPPORTED_IMAGE,
    message: /Run-length encoded \(RLE\) BMPs are not supported.*24-bit BMP/,
    sniff: true,
  },
  'bmp-7-bits.bmp': { code: UNSUPPORTED_IMAGE, message: /7 bits per pixel/, sniff: true },
  // Real 64x64 files whose headers were edited to claim 4096x4096: refused from the header and the
  // amount of data, before a decoder fills 16.7 million pixels nobody sent.
  'bmp-claims-4096x4096.bmp': {
    code: UNSUPPORTED_IMAGE,
    message: /truncated: 4096x4096 pixels need 50331702 bytes but the file has 12342/,
    sniff: true,
  },
  'png-claims-4096x4096.png': {
    code: UNSUPPORTED_IMAGE,
    message:
      /PNG file claims 4096x4096 pixels but holds 1762 bytes of image data; that size needs at least 48775/,
    sniff: true,
  },
  'jpeg-claims-4096x4096.jpg': {
    code: UNSUPPORTED_IMAGE,
    message:
      /JPEG file claims 4096x4096 pixels but holds 404 bytes of image data; that size needs at least 24576/,
    sniff: true,
  },
  'tiff-claims-4096x4096.tif': {
    code: UNSUPPORTED_IMAGE,
    message: /TIFF file claims 4096x4096 pixels but holds 12288 bytes .* at least 2097152/,
    sniff: true,
  },
  'tiff-jpeg-claims-4096x4096.tif': {
    code: UNSUPPORTED_IMAGE,
    message: /TIFF file claims 4096x4096 pixels but holds 351 bytes .* at least 16384/,
    sniff: true,
  },
  'png-truncated.png': {
    code: UNSUPPORTED_IMAGE,
    message: /PNG file could not be decoded: it is truncated or corrupt/,
    sniff: false,
  },
  'png-bad-ihdr-crc.png': { code: UNSUPPORTED_IMAGE, message: /IHDR checksum/, sniff: true },
  'png-corrupt-data.png': { code: UNSUPPORTED_IMAGE, message: /PNG file could not be decoded/, sniff: false },
  'png-100000x100000.png': { code: PAYLOAD_TOO_LARGE, message: /100000x100000 pixels/, sniff: true },
  'jpeg-truncated.jpg': {
    code: UNSUPPORTED_IMAGE,
    message: /JPEG file could not be decoded: it is truncated or corrupt/,
    sniff: false,
  },
  'jpeg-no-frame-header.jpg': { code: UNSUPPORTED_IMAGE, message: /JPEG header is corrupt/, sniff: true },
  'jpeg-65500x65500.jpg': { code: PAYLOAD_TOO_LARGE, message: /65500x65500 pixels/, sniff: true },
  'tiff-truncated.tif': { code: UNSUPPORTED_IMAGE, message: /TIFF file is truncated/, sniff: true },
  'tiff-100000x100000.tif': { code: PAYLOAD_TOO_LARGE, message: /100000x100000 pixels/, sniff: true },
};

function caught(run: () => unknown): LymphoscopeError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(LymphoscopeError);
    return error as LymphoscopeError;
  }
  throw new Error('expected an error');
}

describe('the bad-image corpus', () => {
  it('has an expectation for every file and a file for every expectation', () => {
    expect(readdirSync(CORPUS).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))('%s is refused with the right error', async (name, want) => {
    const bytes = readFileSync(path.join(CORPUS, name));
    const error = await decodeImage(bytes).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LymphoscopeError);
    expect((error as LymphoscopeError).code).toBe(want.code);
    expect((error as LymphoscopeError).message).toMatch(want.message);
    if (want.sniff) {
      const sniffed = caught(() => sniffImage(bytes));
      expect(sniffed.code).toBe(want.code);
      expect(sniffed.message).toBe((error as LymphoscopeError).message);
    } else {
      expect(() => sniffImage(bytes)).not.toThrow();
    }
  });

  it('refuses the huge claims without allocating the pixels they claim', async () => {
    // 100000x100000 RGB would be 30 GB; a refusal that allocated it would crash the test process.
    const before = process.memoryUsage().arrayBuffers;
    for (const name of [
      'bmp-100000x100000.bmp',
      'png-100000x100000.png',
      'jpeg-65500x65500.jpg',
      'tiff-100000x100000.tif',
    ]) {
      const bytes = readFileSync(path.join(CORPUS, name));
      for (let i = 0; i < 20; i++) await expect(decodeImage(bytes)).rejects.toBeInstanceOf(LymphoscopeError);
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * 1024);
  });

  it('still refuses the 100000x100000 BMP when the limits would allow it, because its pixels are missing', () => {
    const bytes = readFileSync(path.join(CORPUS, 'bmp-100000x100000.bmp'));
    const generous = { ...DEFAULT_IMAGE_LIMITS, maxWidth: 200000, maxHeight: 200000 };
    const error = caught(() => sniffImage(bytes, generous));
    expect(error.code).toBe(UNSUPPORTED_IMAGE);
    expect(error.message).toMatch(/past the end of the 54-byte file/);
  });
});
