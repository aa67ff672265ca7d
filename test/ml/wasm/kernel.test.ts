import { MemoryLayout, wasmKernel } from '../../../src/ml/wasm/kernel';
import { OVERLAY_WASM } from '../../../src/ml/wasm/kernels.generated';

describe('wasmKernel', () => {
  it('keeps one instance for calls up to retainBytes, grown to what each needs', () => {
    const inits: WebAssembly.Memory[] = [];
    const kernel = wasmKernel(OVERLAY_WASM, { retainBytes: 4 << 20, init: (memory) => inits.push(memory) });
    const first = kernel(100);
    expect(first.memory.buffer.byteLength).toBeGreaterThanOrEqual(100);
    const second = kernel(3 << 20);
    expect(second).toBe(first);
    expect(second.memory.buffer.byteLength).toBeGreaterThanOrEqual(3 << 20);
    expect(inits).toEqual([first.memory]);
    expect(typeof first.functions).toBe('object');
  });

  it('gives a bigger call an instance of its own, and the kept one keeps its size', () => {
    const inits: WebAssembly.Memory[] = [];
    const kernel = wasmKernel(OVERLAY_WASM, { retainBytes: 1 << 20, init: (memory) => inits.push(memory) });
    const kept = kernel(1 << 20);
    const size = kept.memory.buffer.byteLength;
    const big = kernel(5 << 20);
    expect(big).not.toBe(kept);
    expect(big.memory.buffer.byteLength).toBeGreaterThanOrEqual(5 << 20);
    expect(inits).toEqual([kept.memory, big.memory]);
    expect(kernel(10)).toBe(kept);
    expect(kept.memory.buffer.byteLength).toBe(size);
  });
});

describe('MemoryLayout', () => {
  it('places regions one after another on 16-byte boundaries', () => {
    const layout = new MemoryLayout(256);
    expect([layout.place(3), layout.place(16), layout.place(17), layout.place(0), layout.place(1)]).toEqual([
      256, 272, 288, 320, 320,
    ]);
    expect(layout.end).toBe(336);
  });
});
