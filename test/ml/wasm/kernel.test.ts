import { MemoryLayout, wasmKernel } from '../../../src/ml/wasm/kernel';
import { OVERLAY_WASM } from '../../../src/ml/wasm/kernels.generated';

describe('wasmKernel', () => {
  it('keeps one instance while it has room, and never grows (detaches) a memory', () => {
    const inits: WebAssembly.Memory[] = [];
    const kernel = wasmKernel(OVERLAY_WASM, { retainBytes: 16 << 20, init: (memory) => inits.push(memory) });
    const first = kernel(100_000);
    const buffer = first.memory.buffer;
    expect(buffer.byteLength).toBeGreaterThanOrEqual(100_000);
    // Room for twice the call: a slightly bigger one reuses it.
    expect(kernel(150_000)).toBe(first);
    // A call that does not fit gets a new instance, which is kept from then on; the old memory's buffer is
    // not detached (a detached buffer has byteLength 0), since no memory was grown.
    const second = kernel(3 << 20);
    expect(second).not.toBe(first);
    expect(second.memory.buffer.byteLength).toBeGreaterThanOrEqual(3 << 20);
    expect(buffer.byteLength).toBe(first.memory.buffer.byteLength);
    expect(buffer.byteLength).toBeGreaterThan(0);
    expect(kernel(100)).toBe(second);
    expect(inits).toEqual([first.memory, second.memory]);
    expect(typeof second.functions).toBe('object');
  });

  it('gives a call bigger than retainBytes an instance of its own, and keeps the kept one as it was', () => {
    const kernel = wasmKernel(OVERLAY_WASM, { retainBytes: 1 << 20 });
    const kept = kernel(1 << 20);
    const size = kept.memory.buffer.byteLength;
    const big = kernel(5 << 20);
    expect(big).not.toBe(kept);
    expect(big.memory.buffer.byteLength).toBeGreaterThanOrEqual(5 << 20);
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
