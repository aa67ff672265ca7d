import { badInput, tooLarge } from '../errors';
import type { ImageLimits } from '../ml/image/decode';
import { currentPixelBudget } from './work-budget';

/** The image limits of src/config.ts that every way into the service (inline, upload, import) applies. */
export interface ImageLimitsConfig {
  inlineImageBytes: number;
  uploadBytes: number;
  imageSide: number;
  importFiles: number;
  pageSize: number;
}

/** What the decoder may accept: at most `maxBytes`, each side at most `imageSide`, pixels charged to the request. */
export function imageLimits(limits: Pick<ImageLimitsConfig, 'imageSide'>, maxBytes: number): ImageLimits {
  return {
    maxBytes,
    maxWidth: limits.imageSide,
    maxHeight: limits.imageSide,
    // Within a request, every decoded image is charged to its pixel budget (work-budget.ts).
    beforeDecode: ({ width, height }) => currentPixelBudget()?.spend(width * height),
  };
}

/** Decodes base64 strictly: garbage is refused instead of silently producing other bytes. */
export function decodeBase64(
  imageBase64: string,
  limits: Pick<ImageLimitsConfig, 'inlineImageBytes'>,
  field = 'imageBase64',
): Buffer {
  const maxChars = Math.ceil((limits.inlineImageBytes * 4) / 3) + 4;
  if (imageBase64.length > maxChars) {
    throw tooLarge(
      `${field} is over the inline limit of ${limits.inlineImageBytes} bytes; use createImageUpload.`,
      { limit: limits.inlineImageBytes },
    );
  }
  // The common case, canonical base64 (what Buffer#toString('base64') and standard encoders write), is
  // proved by decoding and encoding back: both native, about 5x cheaper on a 600 KB image than the
  // pattern below, which a 450x450 cell otherwise pays on every request. A string that encodes back to
  // itself is exactly the canonical encoding of those bytes, so nothing the strict path refuses gets
  // through. Anything else (whitespace, a data: URL, base64url, no padding, garbage) takes the strict path.
  const decoded = Buffer.from(imageBase64, 'base64');
  if (decoded.length > 0 && decoded.toString('base64') === imageBase64) return decoded;
  const compact = imageBase64.replace(/^data:[^;,]+;base64,/, '').replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 === 1 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(compact)) {
    throw badInput(`${field} is not valid base64.`, { field });
  }
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
}
