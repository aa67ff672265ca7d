import { LymphoscopeError } from '../../../src/errors';
import { decodeImage } from '../../../src/ml/image/decode';
import { measureMorphology, morphologyNorms } from '../../../src/ml/features/morphology';
import { encodeBmp, syntheticCell } from '../../../src/ml/data/synthetic';

describe('syntheticCell', () => {
  it('is deterministic per seed and label, and differs across seeds', () => {
    const a = syntheticCell(11, { label: 1, size: 96 });
    const b = syntheticCell(11, { label: 1, size: 96 });
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(Buffer.from(syntheticCell(12, { label: 1, size: 96 }).data).equals(Buffer.from(a.data))).toBe(
      false,
    );
    expect(Buffer.from(syntheticCell(11, { label: 0, size: 96 }).data).equals(Buffer.from(a.data))).toBe(
      false,
    );
  });

  it('looks like a C-NMC image: 450x450 by default, a purple cell centred on black', () => {
    const img = syntheticCell(3, { label: 0 });
    expect(img.width).toBe(450);
    expect(img.data).toHaveLength(450 * 450 * 3);
    expect(Array.from(img.data.subarray(0, 3))).toEqual([0, 0, 0]);
    const m = measureMorphology(img);
    expect(m.meanRgb[2]).toBeGreaterThan(m.meanRgb[1]);
    expect(m.meanRgb[0]).toBeGreaterThan(m.meanRgb[1]);
    expect(m.equivalentDiameterPx).toBeGreaterThan(100);
    expect(m.equivalentDiameterPx).toBeLessThan(250);
  });

  it('makes ALL cells larger and less regular than normal ones on average, as in the real data', () => {
    const measured = Array.from({ length: 24 }, (_, i) => {
      const label = (i % 2) as 0 | 1;
      return { m: measureMorphology(syntheticCell(100 + i, { label, size: 160 })), label };
    });
    const norms = morphologyNorms(measured);
    expect(norms.all.mean.areaPx!).toBeGreaterThan(norms.hem.mean.areaPx! * 1.4);
    expect(norms.all.mean.solidity!).toBeLessThan(norms.hem.mean.solidity!);
    expect(norms.all.mean.circularity!).toBeLessThan(norms.hem.mean.circularity!);
  });

  it('refuses absurd sizes', () => {
    expect(() => syntheticCell(1, { label: 0, size: 5 })).toThrow(LymphoscopeError);
  });
});

describe('encodeBmp', () => {
  it('writes a 24-bit bottom-up BMP with padded rows that decodes to the same pixels', async () => {
    const img = syntheticCell(5, { label: 1, size: 50 }); // 150 bytes per row, padded to 152
    const bmp = encodeBmp(img);
    expect(bmp.toString('latin1', 0, 2)).toBe('BM');
    expect(bmp.length).toBe(54 + 152 * 50);
    expect(bmp.readUInt32LE(2)).toBe(bmp.length);
    expect(bmp.readUInt16LE(28)).toBe(24);
    expect(bmp.readInt32LE(22)).toBe(50); // positive height: bottom-up
    const decoded = await decodeImage(bmp);
    expect(Buffer.from(decoded.data).equals(Buffer.from(img.data))).toBe(true);
  });
});
