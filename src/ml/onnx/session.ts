import { availableParallelism } from 'node:os';
import type * as Ort from 'onnxruntime-node';
import { badInput } from '../../errors';
import { mlSettings } from '../settings';
import { ONNX_GRAD_CAM, ONNX_INPUT, ONNX_PROBABILITY } from './names';
import { pruneOnnxOutputs } from './prune';

type OnnxRuntime = typeof Ort;

let runtime: OnnxRuntime | null | undefined;
let loadError: string | undefined;

/**
 * onnxruntime-node, or null where its native binary cannot load (another platform, a Lambda zip without
 * it, switched off in MlSettings by LYMPHOSCOPE_ONNX=off): serving then stays on TF.js. Loaded on first
 * use and cached.
 */
export function onnxRuntime(): OnnxRuntime | null {
  if (runtime !== undefined) return runtime;
  if (!mlSettings().onnx) {
    loadError = 'disabled by LYMPHOSCOPE_ONNX=off';
    return (runtime = null);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional native addon, loaded on first use
    runtime = require('onnxruntime-node') as OnnxRuntime;
  } catch (error) {
    loadError = (error as Error).message.split('\n')[0];
    runtime = null;
  }
  return runtime;
}

/**
 * Threads per onnxruntime session: MlSettings.onnxThreads (LYMPHOSCOPE_ONNX_THREADS), else every core the
 * process may use. On a machine shared with other busy processes one thread can be faster
 * (docs/PERFORMANCE.md).
 */
export function defaultOnnxThreads(): number {
  return mlSettings().onnxThreads ?? availableParallelism();
}

/**
 * Session options for our models. Idle intra-op threads sleep instead of spinning: on a machine whose
 * cores other processes also use, spinning threads fight them and a lymphonet training step on 2 threads
 * took 235 ms instead of 155 ms (docs/PERFORMANCE.md).
 */
export function sessionOptions(threads: number): Ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** Why onnxRuntime() answered null, for the log. */
export function onnxRuntimeError(): string | undefined {
  return loadError;
}

export interface OnnxSessionOptions {
  /** Threads for one inference; default defaultOnnxThreads(). */
  threads?: number;
}

/**
 * An exported classifier (see export.ts) in an onnxruntime session: probabilities for a batch, or one
 * image's probability and Grad-CAM from a single run. A model that computes Grad-CAM gets a second session
 * on the same graph without it (prune.ts), which predict() uses: onnxruntime runs every node of a graph
 * on every run, so the probabilities alone would otherwise pay for the Grad-CAM too.
 */
export class OnnxClassifier {
  private constructor(
    private readonly ort: OnnxRuntime,
    private readonly session: Ort.InferenceSession,
    /** The graph without Grad-CAM; the session itself for a model that has none. */
    private readonly probabilities: Ort.InferenceSession,
    readonly inputSize: number,
    readonly threads: number,
  ) {}

  /** Whether the graph computes Grad-CAM (explain() works). */
  get explains(): boolean {
    return this.session.outputNames.includes(ONNX_GRAD_CAM);
  }

  static async create(
    bytes: Uint8Array,
    inputSize: number,
    opts: OnnxSessionOptions = {},
  ): Promise<OnnxClassifier> {
    const ort = onnxRuntime();
    if (!ort) throw new Error(`onnxruntime-node is not available: ${loadError ?? 'unknown reason'}`);
    const threads = opts.threads ?? defaultOnnxThreads();
    const session = await ort.InferenceSession.create(bytes, sessionOptions(threads));
    for (const name of [ONNX_INPUT, ONNX_PROBABILITY]) {
      if (![...session.inputNames, ...session.outputNames].includes(name)) {
        await session.release();
        throw new Error(`The ONNX model has no '${name}' tensor; it was not exported by Lymphoscope.`);
      }
    }
    if (!session.outputNames.includes(ONNX_GRAD_CAM))
      return new OnnxClassifier(ort, session, session, inputSize, threads);
    try {
      const pruned = pruneOnnxOutputs(bytes, [ONNX_PROBABILITY]);
      const probabilities = await ort.InferenceSession.create(pruned, sessionOptions(threads));
      return new OnnxClassifier(ort, session, probabilities, inputSize, threads);
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  private feed(pixels: Float32Array, count: number): Ort.InferenceSession.FeedsType {
    const per = this.inputSize * this.inputSize * 3;
    if (!Number.isInteger(count) || count < 1 || pixels.length !== count * per) {
      throw badInput(
        `Expected ${count} images of ${this.inputSize}x${this.inputSize}x3 values; got ${pixels.length}.`,
      );
    }
    return {
      [ONNX_INPUT]: new this.ort.Tensor('float32', pixels, [count, this.inputSize, this.inputSize, 3]),
    };
  }

  /** The probability of ALL for each of `count` NHWC images in [0, 1]. */
  async predict(pixels: Float32Array, count = 1): Promise<Float32Array> {
    const result = await this.probabilities.run(this.feed(pixels, count), [ONNX_PROBABILITY]);
    try {
      return Float32Array.from(result[ONNX_PROBABILITY].data as Float32Array);
    } finally {
      for (const tensor of Object.values(result)) tensor.dispose();
    }
  }

  /**
   * One image's probability and Grad-CAM for ALL, normalised as heatmap.ts gradCam does: inputSize^2
   * values in [0, 1], all zeros when nothing argued for ALL.
   */
  async explain(pixels: Float32Array): Promise<{ probabilityAll: number; heatmap: Float32Array }> {
    if (!this.explains) throw new Error('This ONNX model has no Grad-CAM output.');
    const result = await this.session.run(this.feed(pixels, 1), [ONNX_PROBABILITY, ONNX_GRAD_CAM]);
    try {
      const probabilityAll = (result[ONNX_PROBABILITY].data as Float32Array)[0];
      const cam = result[ONNX_GRAD_CAM].data as Float32Array;
      let peak = 0;
      for (const v of cam) if (v > peak) peak = v;
      const heatmap = new Float32Array(cam.length);
      if (peak > 0) for (let i = 0; i < cam.length; i++) heatmap[i] = Math.min(1, cam[i] / peak);
      return { probabilityAll, heatmap };
    } finally {
      for (const tensor of Object.values(result)) tensor.dispose();
    }
  }

  async dispose(): Promise<void> {
    if (this.probabilities !== this.session) await this.probabilities.release();
    await this.session.release();
  }
}
