import * as tf from '@tensorflow/tfjs';
import { conv2dBackpropFilter } from './conv2d-backprop-filter';
import { conv2dBackpropInput } from './conv2d-backprop-input';
import type { KernelArgs } from './heap';
import { maxPoolGrad } from './max-pool-grad';
import { perChannelSum } from './reduce';
import { tile } from './tile';

const BACKEND = 'wasm';

/** Our implementation; `shipped` is the backend's own kernel of the same name (for cases we do not speed up). */
type TrainingKernel = (args: KernelArgs, shipped: tf.KernelFunc) => tf.TensorInfo;

/**
 * What the wasm backend lacks or does slowly for training our architectures, found by profiling a
 * lymphonet and a seed-2x2x1x1 training step at 96x96, batch 32.
 */
const TRAINING_KERNELS: ReadonlyArray<{ kernelName: string; kernelFunc: TrainingKernel }> = [
  { kernelName: tf.Conv2DBackpropFilter, kernelFunc: (args) => conv2dBackpropFilter(args) },
  { kernelName: tf.Conv2DBackpropInput, kernelFunc: (args) => conv2dBackpropInput(args) },
  { kernelName: tf.MaxPoolGrad, kernelFunc: (args) => maxPoolGrad(args) },
  { kernelName: tf.Tile, kernelFunc: (args) => tile(args) },
  { kernelName: tf.Sum, kernelFunc: perChannelSum },
];

const shipped = new Map<string, tf.KernelConfig>();
let registered = false;

/**
 * Registers our wasm training kernels, replacing shipped ones of the same name. Idempotent. Call it after
 * the wasm backend is initialised: initialisation runs each registered kernel's setup, which binds the
 * shipped kernels' wasm functions that ours fall back to.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  if (!tf.engine().registry[BACKEND]) {
    throw new Error(
      'registerWasmTrainingKernels: initialise the wasm backend first (tf.setBackend("wasm")).',
    );
  }
  for (const { kernelName } of TRAINING_KERNELS) {
    const existing = tf.getKernel(kernelName, BACKEND);
    if (existing) shipped.set(kernelName, existing);
  }
  for (const kernel of TRAINING_KERNELS) install(kernel.kernelName, ours(kernel));
  registered = true;
}

/** Names of the kernels registerWasmTrainingKernels installs. */
export function wasmTrainingKernelNames(): string[] {
  return TRAINING_KERNELS.map((kernel) => kernel.kernelName);
}

/**
 * Runs `body` with the wasm backend's shipped implementation of one kernel instead of ours, for
 * benchmarks and tests that compare the two. Throws if the backend ships none.
 */
export function withShippedKernel<T>(kernelName: string, body: () => T): T {
  const original = shipped.get(kernelName);
  const kernel = TRAINING_KERNELS.find((k) => k.kernelName === kernelName);
  if (!registered || !kernel) throw new Error(`'${kernelName}' is not one of our registered wasm kernels.`);
  if (!original) throw new Error(`The wasm backend ships no '${kernelName}' kernel.`);
  install(kernelName, original.kernelFunc);
  try {
    return body();
  } finally {
    install(kernelName, ours(kernel));
  }
}

function ours(kernel: { kernelName: string; kernelFunc: TrainingKernel }): tf.KernelFunc {
  const fallback: tf.KernelFunc = (args) => {
    const original = shipped.get(kernel.kernelName);
    if (!original)
      throw new Error(`The wasm backend ships no '${kernel.kernelName}' kernel to fall back to.`);
    return original.kernelFunc(args);
  };
  return (args) => kernel.kernelFunc(args, fallback);
}

function install(kernelName: string, kernelFunc: tf.KernelFunc): void {
  if (tf.getKernel(kernelName, BACKEND)) tf.unregisterKernel(kernelName, BACKEND);
  tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc });
}
