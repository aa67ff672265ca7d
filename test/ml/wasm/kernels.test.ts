import { readFileSync } from 'node:fs';
import { GENERATED, generatedKernels } from '../../../scripts/build-wasm';
import { FOREGROUND_WASM, OVERLAY_WASM, TEXTURE_WASM } from '../../../src/ml/wasm/kernels.generated';

describe('the WebAssembly kernels', () => {
  it('are what their .wat sources assemble to (else run `npm run build:wasm`)', async () => {
    expect(readFileSync(GENERATED, 'utf8')).toBe(await generatedKernels());
  });

  it('compile, import their memory, and export the functions their callers take from them', () => {
    const exported = (base64: string) => {
      const bytes = Buffer.from(base64, 'base64');
      expect(WebAssembly.validate(bytes)).toBe(true);
      const module = new WebAssembly.Module(bytes);
      // Each takes its memory from its caller (src/ml/wasm/kernel.ts), so that no memory is ever grown.
      expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
      const memory = new WebAssembly.Memory({ initial: 1 });
      return Object.keys(new WebAssembly.Instance(module, { env: { memory } }).exports).sort();
    };
    expect(exported(FOREGROUND_WASM)).toEqual(['scanPixels']);
    expect(exported(OVERLAY_WASM)).toEqual(['overlay']);
    expect(exported(TEXTURE_WASM)).toEqual(['boxLuma', 'countPairs', 'localBinaryPatterns', 'quantise']);
  });
});
