/**
 * An instance of one of the WebAssembly kernels of kernels.generated.ts, with its memory grown to what a
 * call needs. A WebAssembly memory never shrinks, so one instance is kept only for calls that need at
 * most `retainBytes`; a bigger call (an image near the API's 4096-pixel side) gets an instance of its own,
 * which is garbage once the call returns.
 *
 * Calls are synchronous and JavaScript runs one at a time on a thread, so a kept instance is never used by
 * two calls at once; a caller copies what it needs out of the memory before it returns.
 */
export interface KernelInstance<F> {
  memory: WebAssembly.Memory;
  functions: F;
}

export function wasmKernel<F>(
  base64: string,
  options: { retainBytes: number; init?: (memory: WebAssembly.Memory) => void },
): (bytes: number) => KernelInstance<F> {
  let compiled: WebAssembly.Module | null = null;
  let kept: KernelInstance<F> | null = null;
  const instantiate = (): KernelInstance<F> => {
    compiled ??= new WebAssembly.Module(Buffer.from(base64, 'base64'));
    const { exports } = new WebAssembly.Instance(compiled, {});
    const memory = exports.memory as WebAssembly.Memory;
    options.init?.(memory);
    return { memory, functions: exports as unknown as F };
  };
  return (bytes) => {
    const instance = bytes <= options.retainBytes ? (kept ??= instantiate()) : instantiate();
    const have = instance.memory.buffer.byteLength;
    if (bytes > have) instance.memory.grow(Math.ceil((bytes - have) / 65536));
    return instance;
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
