/** An instance of one of the WebAssembly kernels of kernels.generated.ts: its memory and its exports. */
export interface KernelInstance<F> {
  memory: WebAssembly.Memory;
  functions: F;
}

const PAGE = 65536;

/**
 * A function giving an instance of the kernel in `base64` (kernels.generated.ts) with memory for `bytes`,
 * what a call needs.
 *
 * A memory is never grown: growing a WebAssembly memory detaches its ArrayBuffer, and the first ArrayBuffer
 * a process detaches makes V8 throw away the optimised code of every function that reads typed arrays (it
 * had assumed none would be detached). In the packaged handler that was every JavaScript pixel loop of the
 * analysis, compiled again over its second and third predictions (docs/PERFORMANCE.md, "The analysis of one
 * cell, fourth pass"). A call that needs more memory than the kept instance has gets a new instance with a
 * memory of its own, twice as big as the call needs, and that instance is kept instead.
 *
 * A memory never shrinks either, so an instance is kept only for calls that need at most `retainBytes`; a
 * bigger call (an image near the API's 4096-pixel side) gets an instance of its own, garbage once it returns.
 *
 * Calls are synchronous and JavaScript runs one at a time on a thread, so a kept instance is never used by
 * two calls at once; a caller copies what it needs out of the memory before it returns. `init` writes a
 * kernel's constant tables into each new memory.
 */
export function wasmKernel<F>(
  base64: string,
  options: { retainBytes: number; init?: (memory: WebAssembly.Memory) => void },
): (bytes: number) => KernelInstance<F> {
  let compiled: WebAssembly.Module | null = null;
  let kept: KernelInstance<F> | null = null;
  const instantiate = (bytes: number): KernelInstance<F> => {
    compiled ??= new WebAssembly.Module(Buffer.from(base64, 'base64'));
    const memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE)) });
    const { exports } = new WebAssembly.Instance(compiled, { env: { memory } });
    options.init?.(memory);
    return { memory, functions: exports as unknown as F };
  };
  return (bytes) => {
    if (bytes > options.retainBytes) return instantiate(bytes);
    if (!kept || kept.memory.buffer.byteLength < bytes)
      kept = instantiate(Math.min(2 * bytes, options.retainBytes));
    return kept;
  };
}

/**
 * Places regions one after another from `start`, each aligned to 16 bytes (a SIMD load's width);
 * `end` is where the last one ends.
 */
export class MemoryLayout {
  end: number;

  constructor(start = 0) {
    this.end = start;
  }

  place(bytes: number): number {
    const at = this.end;
    this.end += (bytes + 15) & ~15;
    return at;
  }
}
