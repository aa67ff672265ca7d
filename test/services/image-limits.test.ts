import { ErrorCode, LymphoscopeError } from '../../src/errors';
import { decodeImage } from '../../src/ml/image/decode';
import { decodeBase64, imageLimits } from '../../src/services/image-limits';
import { withPixelBudget } from '../../src/services/work-budget';
import { sampleImages } from '../helpers/sample';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return error instanceof LymphoscopeError ? error.code : 'not a LymphoscopeError';
  }
  return undefined;
};

describe('decodeBase64', () => {
  const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255]);
  const limits = { inlineImageBytes: 1024 };

  it('reads plain base64, base64url, a data: URL and wrapped lines to the same bytes', () => {
    expect(decodeBase64(bytes.toString('base64'), limits)).toEqual(bytes);
    expect(decodeBase64(bytes.toString('base64url'), limits)).toEqual(bytes);
    expect(decodeBase64(`data:image/bmp;base64,${bytes.toString('base64')}`, limits)).toEqual(bytes);
    const wrapped = bytes.toString('base64').replace(/(.{4})/g, '$1\n');
    expect(decodeBase64(wrapped, limits)).toEqual(bytes);
  });

  it('refuses what is not base64 with BAD_USER_INPUT naming the field', () => {
    for (const garbage of ['', 'a', 'not base64!', 'QUJD=A']) {
      expect(codeOf(() => decodeBase64(garbage, limits))).toBe(ErrorCode.BAD_USER_INPUT);
    }
    const error = (() => {
      try {
        decodeBase64('%%%', limits, 'images[3]');
      } catch (thrown) {
        return thrown as LymphoscopeError;
      }
    })();
    expect(error?.message).toBe('images[3] is not valid base64.');
    expect(error?.details).toEqual({ field: 'images[3]' });
  });

  it('answers canonical base64 of every length, and every one-character change of it, as the strict rule says', () => {
    // The rule, spelled out independently of the code: whitespace aside, base64 or base64url characters
    // with at most two '=' at the end, not empty, and no length that leaves a lone character.
    const strictlyValid = (text: string) => {
      const compact = text.replace(/\s+/g, '');
      return compact.length > 0 && compact.length % 4 !== 1 && /^[A-Za-z0-9+/_-]*={0,2}$/.test(compact);
    };
    // Lengths 1..40 cover every padding case of the canonical fast path; the changed character lands in the
    // data, in the padding or just before it.
    for (let length = 1; length <= 40; length++) {
      const data = Buffer.from(Array.from({ length }, (_, i) => (i * 97 + length * 31) & 255));
      const text = data.toString('base64');
      expect(decodeBase64(text, limits)).toEqual(data);
      for (const at of [0, text.length >> 1, text.length - 2, text.length - 1]) {
        for (const bad of ['*', '=', ' ', '-', '!', 'A=']) {
          const changed = text.slice(0, at) + bad + text.slice(at + 1);
          if (strictlyValid(changed)) {
            const compact = changed.replace(/\s+/g, '');
            expect(decodeBase64(changed, limits)).toEqual(Buffer.from(compact, 'base64'));
          } else {
            expect(codeOf(() => decodeBase64(changed, limits))).toBe(ErrorCode.BAD_USER_INPUT);
          }
        }
      }
    }
  });

  it('refuses text over the inline limit before decoding it, with the limit in the error', () => {
    const over = Buffer.alloc(1025).toString('base64');
    const atLimit = Buffer.alloc(1024).toString('base64');
    expect(decodeBase64(atLimit, limits)).toHaveLength(1024);
    expect(codeOf(() => decodeBase64(over + 'AAAA', limits))).toBe(ErrorCode.PAYLOAD_TOO_LARGE);
    expect(() => decodeBase64(over + 'AAAA', limits)).toThrow(/inline limit of 1024 bytes/);
  });
});

describe('imageLimits', () => {
  const cell = sampleImages()[0]; // a real 450x450 C-NMC cell

  it('bounds the bytes and each side', async () => {
    await expect(
      decodeImage(cell.bytes, imageLimits({ imageSide: 450 }, cell.bytes.length)),
    ).resolves.toMatchObject({ width: 450, height: 450 });
    await expect(
      decodeImage(cell.bytes, imageLimits({ imageSide: 449 }, cell.bytes.length)),
    ).rejects.toMatchObject({
      code: ErrorCode.PAYLOAD_TOO_LARGE,
    });
    await expect(
      decodeImage(cell.bytes, imageLimits({ imageSide: 450 }, cell.bytes.length - 1)),
    ).rejects.toMatchObject({ code: ErrorCode.PAYLOAD_TOO_LARGE });
  });

  it("charges every decoded image to the request's pixel budget, and nothing outside a request", async () => {
    const limits = imageLimits({ imageSide: 4096 }, 10 << 20);
    await withPixelBudget(450 * 450 * 2, async () => {
      await decodeImage(cell.bytes, limits);
      await decodeImage(cell.bytes, limits);
      await expect(decodeImage(cell.bytes, limits)).rejects.toMatchObject({
        code: ErrorCode.PAYLOAD_TOO_LARGE,
      });
    });
    for (let i = 0; i < 3; i++) await decodeImage(cell.bytes, limits);
  });
});
