/**
 * Writes test/fixtures/bad-images/: broken and hostile image files that the decoder must refuse with
 * the right error, quickly and without allocating what the header claims. The files are committed;
 * rerun this only to add a case (the output is deterministic), then list the new file's expected error
 * in test/ml/image/bad-images.test.ts.
 *
 *   npx tsx scripts/make-bad-images.ts
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { decodeBmp } from '../src/ml/image/bmp';
import { DEFAULT_IMAGE_LIMITS } from '../src/ml/image/types';
import { encodeBmp } from '../src/ml/data/synthetic';

const root = path.join(__dirname, '..');
const outDir = path.join(root, 'test/fixtures/bad-images');
const SOURCE_CELL = 'data/cnmc-sample/all/UID_11_1_1_all.bmp';

function bmpHeader(fields: {
  width: number;
  height: number;
  bpp?: number;
  compression?: number;
  dibSize?: number;
  pixelOffset?: number;
  fileSize?: number;
}): Buffer {
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(fields.fileSize ?? 54, 2);
  header.writeUInt32LE(fields.pixelOffset ?? 54, 10);
  header.writeUInt32LE(fields.dibSize ?? 40, 14);
  header.writeInt32LE(fields.width, 18);
  header.writeInt32LE(fields.height, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(fields.bpp ?? 24, 28);
  header.writeUInt32LE(fields.compression ?? 0, 30);
  return header;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function jpegClaiming(width: number, height: number): Buffer {
  const sof = Buffer.from([
    0xff, 0xc0, 0x00, 0x11, 0x08, 0, 0, 0, 0, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
  ]);
  sof.writeUInt16BE(height, 5);
  sof.writeUInt16BE(width, 7);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), sof, Buffer.from([0xff, 0xd9])]);
}

function tiffClaiming(width: number, height: number): Buffer {
  const tiff = Buffer.alloc(8 + 2 + 2 * 12 + 4);
  tiff.write('II', 0, 'latin1');
  tiff.writeUInt16LE(42, 2);
  tiff.writeUInt32LE(8, 4);
  tiff.writeUInt16LE(2, 8);
  [
    [256, width],
    [257, height],
  ].forEach(([tag, value], i) => {
    const entry = 10 + i * 12;
    tiff.writeUInt16LE(tag, entry);
    tiff.writeUInt16LE(4, entry + 2); // LONG
    tiff.writeUInt32LE(1, entry + 4);
    tiff.writeUInt32LE(value, entry + 8);
  });
  return tiff;
}

async function main(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  // A real C-NMC cell, shrunk to 64x64 to keep the corpus small.
  const cell = decodeBmp(readFileSync(path.join(root, SOURCE_CELL)), DEFAULT_IMAGE_LIMITS);
  const small = await sharp(cell.data, { raw: { width: cell.width, height: cell.height, channels: 3 } })
    .resize(64, 64)
    .raw()
    .toBuffer();
  const smallImage = { width: 64, height: 64, data: new Uint8Array(small) };
  const raw = { raw: { width: 64, height: 64, channels: 3 as const } };
  const bmp = encodeBmp(smallImage);
  const png = await sharp(small, raw).png().toBuffer();
  const jpeg = await sharp(small, raw).jpeg({ quality: 90 }).toBuffer();
  const tiff = await sharp(small, raw).tiff().toBuffer();

  const withField = (buffer: Buffer, write: (b: Buffer) => void) => {
    const copy = Buffer.from(buffer);
    write(copy);
    return copy;
  };
  const idatAt = png.indexOf('IDAT');
  // Real files of the 64x64 cell whose headers were edited to claim 4096x4096: a decoder that trusts
  // them fills 16.7 million pixels from a few kilobytes.
  const sofAt = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
  const jpegLying = withField(jpeg, (b) => {
    b.writeUInt16BE(4096, sofAt + 5);
    b.writeUInt16BE(4096, sofAt + 7);
  });
  const pngLying = withField(png, (b) => {
    b.writeUInt32BE(4096, 16);
    b.writeUInt32BE(4096, 20);
    b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
  });
  const claim4096 = (b: Buffer) => {
    const ifd = b.readUInt32LE(4);
    for (let i = 0; i < b.readUInt16LE(ifd); i++) {
      const entry = ifd + 2 + i * 12;
      const tag = b.readUInt16LE(entry);
      if (tag !== 256 && tag !== 257 && tag !== 278) continue; // width, length, rows per strip
      if (b.readUInt16LE(entry + 2) === 3) b.writeUInt16LE(4096, entry + 8);
      else b.writeUInt32LE(4096, entry + 8);
    }
  };
  const tiffLying = withField(await sharp(small, raw).tiff({ compression: 'none' }).toBuffer(), claim4096);
  const tiffJpegLying = withField(tiff, claim4096);
  const bmpLying = withField(bmp, (b) => {
    b.writeInt32LE(4096, 18);
    b.writeInt32LE(4096, 22);
  });
  const files: Record<string, Buffer> = {
    'empty.bmp': Buffer.alloc(0),
    'notes.txt': Buffer.from('subject,label\nH10,hem\n3,all\nThis is a spreadsheet, not a picture.\n'),
    'random-bytes.png': Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 167 + 13) % 256)),
    'animation.gif': Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'),
    'bigtiff.tif': Buffer.from([0x49, 0x49, 0x2b, 0x00, 0x08, 0x00, 0x00, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0]),
    // BMP
    'bmp-truncated.bmp': bmp.subarray(0, Math.floor(bmp.length * 0.6)),
    'bmp-header-only-half.bmp': bmp.subarray(0, 20),
    'bmp-unknown-dib-size.bmp': withField(bmp, (b) => b.writeUInt32LE(7, 14)),
    'bmp-zero-width.bmp': withField(bmp, (b) => b.writeInt32LE(0, 18)),
    'bmp-negative-width.bmp': withField(bmp, (b) => b.writeInt32LE(-64, 18)),
    'bmp-zero-height.bmp': withField(bmp, (b) => b.writeInt32LE(0, 22)),
    'bmp-offset-past-end.bmp': withField(bmp, (b) => b.writeUInt32LE(b.length + 1000, 10)),
    'bmp-100000x100000.bmp': bmpHeader({ width: 100000, height: 100000 }),
    'bmp-rle8.bmp': Buffer.concat([
      bmpHeader({ width: 4, height: 4, bpp: 8, compression: 1, pixelOffset: 54 + 1024 }),
      Buffer.alloc(1024 + 16),
    ]),
    'bmp-7-bits.bmp': withField(bmp, (b) => b.writeUInt16LE(7, 28)),
    'bmp-claims-4096x4096.bmp': bmpLying,
    // PNG
    'png-truncated.png': png.subarray(0, idatAt + 40),
    'png-bad-ihdr-crc.png': withField(png, (b) => (b[29] ^= 0xff)),
    'png-corrupt-data.png': withField(png, (b) => b.fill(0x5a, idatAt + 8, idatAt + 200)),
    'png-100000x100000.png': pngClaiming(100000, 100000),
    'png-claims-4096x4096.png': pngLying,
    // JPEG
    'jpeg-truncated.jpg': jpeg.subarray(0, Math.floor(jpeg.length / 2)),
    'jpeg-no-frame-header.jpg': Buffer.from([
      0xff, 0xd8, 0xff, 0xda, 0x00, 0x08, 1, 1, 0, 0, 0x3f, 0, 0xff, 0xd9,
    ]),
    'jpeg-65500x65500.jpg': jpegClaiming(65500, 65500),
    'jpeg-claims-4096x4096.jpg': jpegLying,
    // TIFF
    'tiff-truncated.tif': tiff.subarray(0, 12),
    'tiff-100000x100000.tif': tiffClaiming(100000, 100000),
    'tiff-claims-4096x4096.tif': tiffLying,
    'tiff-jpeg-claims-4096x4096.tif': tiffJpegLying,
  };
  for (const [name, bytes] of Object.entries(files)) writeFileSync(path.join(outDir, name), bytes);
  console.log(JSON.stringify({ wrote: Object.keys(files).length, dir: path.relative(root, outDir) }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
