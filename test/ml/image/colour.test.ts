import { applyColour, hueSaturationMatrix } from '../../../src/ml/image/colour';
import { augment, augmenterFor } from '../../../src/ml/image/preprocess';

const apply = (rgb: number[], matrix: readonly number[], gains?: number[]) => {
  const pixels = Float32Array.from(rgb);
  applyColour(pixels, matrix, gains);
  return Array.from(pixels);
};

/** Counts its draws, so a test can tell how many random numbers an augmentation consumed. */
function counting(values: number[]) {
  let calls = 0;
  return {
    next: () => values[calls++ % values.length],
    get calls() {
      return calls;
    },
  };
}

describe('hueSaturationMatrix', () => {
  it('is the identity at hue 0 and saturation 1', () => {
    expect(apply([0.2, 0.5, 0.9], hueSaturationMatrix(0, 1)).map((v) => +v.toFixed(6))).toEqual([
      0.2, 0.5, 0.9,
    ]);
  });

  it('keeps grey grey and black black at any hue and saturation', () => {
    for (const [hue, saturation] of [
      [0.7, 1],
      [-2, 0.3],
      [Math.PI, 1.8],
    ]) {
      const m = hueSaturationMatrix(hue, saturation);
      apply([0.4, 0.4, 0.4], m).forEach((v) => expect(v).toBeCloseTo(0.4, 6));
      expect(apply([0, 0, 0], m)).toEqual([0, 0, 0]);
    }
  });

  it('turns red into green and green into blue at a third of a turn', () => {
    const m = hueSaturationMatrix((2 * Math.PI) / 3, 1);
    apply([1, 0, 0], m).forEach((v, c) => expect(v).toBeCloseTo(c === 1 ? 1 : 0, 6));
    apply([0, 1, 0], m).forEach((v, c) => expect(v).toBeCloseTo(c === 2 ? 1 : 0, 6));
  });

  it('at saturation 0 leaves every channel at the pixel mean', () => {
    apply([0.9, 0.3, 0.3], hueSaturationMatrix(1, 0)).forEach((v) => expect(v).toBeCloseTo(0.5, 6));
  });

  it('applies channel gains after the matrix and clamps to [0, 1]', () => {
    expect(apply([0.5, 0.5, 0.8], hueSaturationMatrix(0, 1), [2, 0.5, 1]).map((v) => +v.toFixed(6))).toEqual([
      1, 0.25, 0.8,
    ]);
  });
});

describe('augment with colour jitter', () => {
  const size = 4;
  const image = Float32Array.from({ length: size * size * 3 }, (_, i) =>
    i % 5 === 0 ? 0 : ((i * 37) % 100) / 100,
  );

  it('draws 3 numbers and gives the same pixels as before when jitter is off', () => {
    const off = counting([0.1, 0.6, 0.3]);
    const plain = counting([0.1, 0.6, 0.3]);
    expect(Array.from(augmenterFor({ colourJitter: 0 })(image, size, off))).toEqual(
      Array.from(augment(image, size, plain)),
    );
    expect(off.calls).toBe(3);
  });

  it('draws 8 numbers, changes colours and keeps the black background black when on', () => {
    const rng = counting([0.1, 0.6, 0.3, 0.95, 0.05, 0.9, 0.1, 0.8]);
    const out = augmenterFor({ colourJitter: 0.5 })(image, size, rng);
    expect(rng.calls).toBe(8);
    const reference = augment(image, size, counting([0.1, 0.6, 0.3]));
    let changed = 0;
    for (let i = 0; i < out.length; i += 3) {
      const black = reference[i] === 0 && reference[i + 1] === 0 && reference[i + 2] === 0;
      if (black) expect([out[i], out[i + 1], out[i + 2]]).toEqual([0, 0, 0]);
      else if (Math.abs(out[i] - reference[i]) > 0.01) changed++;
    }
    expect(changed).toBeGreaterThan(0);
    for (const v of out) expect(v >= 0 && v <= 1).toBe(true);
  });
});
