import { readFileSync } from 'node:fs';
import { GENERATED, generatedKernels } from '../../../scripts/build-wasm';
import { OVERLAY_WASM } from '../../../src/ml/wasm/kernels.generated';

describe('the WebAssembly kernels', () => {
  it('are what their .wat sources assemble to (else run `npm run build:wasm`)', async () => {
    expect(readFileSync(GENERATED, 'utf8')).toBe(await generatedKernels());
  });

  it('compile, and use only what Node 22 runs without flags (SIMD included)', () => {
    const bytes = Buffer.from(OVERLAY_WASM, 'base64');
    expect(WebAssembly.validate(bytes)).toBe(true);
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    expect(Object.keys(exports).sort()).toEqual(['memory', 'overlay']);
  });
});
