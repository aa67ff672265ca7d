import { readFileSync } from 'node:fs';
import { GENERATED, generatedKernels } from '../../../scripts/build-wasm';
import { OVERLAY_WASM, TEXTURE_WASM } from '../../../src/ml/wasm/kernels.generated';

describe('the WebAssembly kernels', () => {
  it('are what their .wat sources assemble to (else run `npm run build:wasm`)', async () => {
    expect(readFileSync(GENERATED, 'utf8')).toBe(await generatedKernels());
  });

  it('compile, and export the functions their callers take from them', () => {
    const exported = (base64: string) => {
      const bytes = Buffer.from(base64, 'base64');
      expect(WebAssembly.validate(bytes)).toBe(true);
      return Object.keys(new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports).sort();
    };
    expect(exported(OVERLAY_WASM)).toEqual(['memory', 'overlay']);
    expect(exported(TEXTURE_WASM)).toEqual([
      'boxLuma',
      'countPairs',
      'localBinaryPatterns',
      'memory',
      'quantise',
    ]);
  });
});
