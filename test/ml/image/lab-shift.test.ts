import { decodeImage } from '../../../src/ml/image/decode';
import { applyLabShift, GREY_BACKGROUND, LAB_SHIFTS } from '../../../src/ml/image/lab-shift';
import { toModelInput } from '../../../src/ml/image/preprocess';
import type { RgbImage } from '../../../src/ml/image/types';
import {
  backgroundColour,
  blackenBackground,
  measureMorphology,
  type Morphology,
} from '../../../src/ml/features/morphology';
import { sampleImages } from '../../helpers/sample';

/** A blast and a normal cell of the real C-NMC sample, with their measured morphology. */
let cells: RgbImage[];
let measured: Morphology[];
beforeAll(async () => {
  const all = sampleImages();
  const picked = [all.find((s) => s.label === 'ALL')!, all.find((s) => s.label === 'NORMAL')!];
  cells = await Promise.all(picked.map((s) => decodeImage(s.bytes)));
  measured = cells.map((image) => measureMorphology(image));
});

const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('lab shifts of real C-NMC cells', () => {
  it('recolour the cell and leave the black background black', async () => {
    for (const shift of ['hue', 'pale'] as const) {
      const shifted = await applyLabShift(cells[0], shift);
      expect(backgroundColour(shifted)).toEqual([0, 0, 0]);
      const before = measured[0].meanRgb;
      const after = measureMorphology(shifted).meanRgb;
      expect(Math.max(...after.map((v, c) => Math.abs(v - before[c])))).toBeGreaterThan(5);
    }
  });

  it('do not change the measured shape under recolouring or a grey background', async () => {
    for (const [k, cell] of cells.entries()) {
      const original = measured[k];
      for (const shift of ['hue', 'pale', 'grey-background'] as const) {
        const m = measureMorphology(await applyLabShift(cell, shift));
        expect(relative(m.areaPx, original.areaPx)).toBeLessThan(0.01);
        expect(relative(m.circularity, original.circularity)).toBeLessThan(0.02);
        expect(relative(m.solidity, original.solidity)).toBeLessThan(0.01);
        expect(Math.abs(m.eccentricity - original.eccentricity)).toBeLessThan(0.02);
      }
    }
  });

  it('scale the measured area with the square of the magnification', async () => {
    for (const [k, cell] of cells.entries()) {
      const area = measured[k].areaPx;
      expect(
        relative(measureMorphology(await applyLabShift(cell, 'zoom-1.25')).areaPx, area * 1.5625),
      ).toBeLessThan(0.04);
      expect(
        relative(measureMorphology(await applyLabShift(cell, 'zoom-0.8')).areaPx, area * 0.64),
      ).toBeLessThan(0.04);
    }
  });

  it('give the network the original input when only the background changed to grey', async () => {
    for (const cell of cells) {
      const grey = await applyLabShift(cell, 'grey-background');
      expect(backgroundColour(grey)).toEqual([GREY_BACKGROUND, GREY_BACKGROUND, GREY_BACKGROUND]);
      const a = await toModelInput(cell, 48);
      const b = await toModelInput(grey, 48);
      let sum = 0;
      for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
      expect(sum / a.length).toBeLessThan(0.002);
    }
  });

  it('keep every variant the size of the original', async () => {
    for (const shift of LAB_SHIFTS) {
      const out = await applyLabShift(cells[1], shift);
      expect([out.width, out.height, out.data.length]).toEqual([
        cells[1].width,
        cells[1].height,
        cells[1].data.length,
      ]);
    }
  });
});

describe('blackenBackground', () => {
  it('returns a black-background image itself, untouched', () => {
    expect(blackenBackground(cells[1])).toBe(cells[1]);
  });

  it('blacks out a grey background outside the cell only', async () => {
    const grey = await applyLabShift(cells[1], 'grey-background');
    const out = blackenBackground(grey);
    expect(backgroundColour(out)).toEqual([0, 0, 0]);
    const centre = ((cells[1].height >> 1) * cells[1].width + (cells[1].width >> 1)) * 3;
    expect(Array.from(out.data.subarray(centre, centre + 3))).toEqual(
      Array.from(cells[1].data.subarray(centre, centre + 3)),
    );
  });
});
