import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { GraphBuilder } from '../src/ml/onnx/graph';
import { onnxRuntime, sessionOptions } from '../src/ml/onnx/session';
import { randomValues, round } from './stats';

const CONV = 'conv 3x3, 32x96x96, 64->64';

export interface PeakRow {
  probe: string;
  runtime: string;
  threads: number;
  gflopsPerSecond: number;
}

/** The peak every "share of peak" divides by: the best row, and which one it was. */
export function machinePeak(rows: PeakRow[]): { gflopsPerSecond: number; winner: string } {
  const best = rows.reduce((a, b) => (b.gflopsPerSecond > a.gflopsPerSecond ? b : a));
  return {
    gflopsPerSecond: best.gflopsPerSecond,
    winner: `${best.probe} (${best.runtime}, ${best.threads} threads)`,
  };
}

/**
 * The CPU's fp32 FMA peak on `cores` cores: clock x FLOPs per cycle per core, with 2 FMA pipes of the
 * widest vectors the CPU reports (AVX-512: 16 lanes, AVX2 with FMA: 8, else SSE: 4; an FMA counts 2
 * FLOPs). The clock is /proc/cpuinfo's "cpu MHz" (what the virtual machine reports; boost clocks can
 * be higher, so a measured probe may beat it). Null where the clock cannot be read.
 */
export function theoreticalPeak(cores: number): PeakRow | null {
  let info = '';
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
  const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1]);
  const flags = new Set((/^flags\s*:(.*)$/m.exec(info)?.[1] ?? '').trim().split(/\s+/));
  if (!(mhz > 0)) return null;
  const lanes = flags.has('avx512f') ? 16 : flags.has('avx2') && flags.has('fma') ? 8 : 4;
  const simd = lanes === 16 ? 'AVX-512' : lanes === 8 ? 'AVX2+FMA' : 'SSE';
  const flopsPerCycle = 2 * lanes * 2;
  return {
    probe: `theoretical: ${cores} cores x ${round(mhz / 1000)} GHz x ${flopsPerCycle} FLOP/cycle (${simd}, 2 FMA pipes)`,
    runtime: 'cpu',
    threads: cores,
    gflopsPerSecond: round((cores * mhz * flopsPerCycle) / 1000),
  };
}

/**
 * Probes of the machine's peak, each the best of several runs, as a peak should be: a large 3x3
 * convolution (batch 32, 96x96, 64 -> 64 channels: 21.7 GFLOP a run) in onnxruntime (MLAS) on 1 thread
 * and on every core, a large GEMM (2048 x 2048 x 2048, 17.2 GFLOP) in onnxruntime on every core, the
 * convolution in the TF.js backend in use (XNNPACK in wasm), and the CPU's theoretical FMA figure.
 * machinePeak() picks the best and says which.
 */
export async function benchPeak(backend: string, quick: boolean): Promise<PeakRow[]> {
  const cores = availableParallelism();
  const rows = await benchConvPeak(backend, quick, cores);
  const ort = onnxRuntime();
  if (ort) {
    const m = 2048;
    const b = new GraphBuilder();
    const x = b.input('x', [m, m]);
    const w = b.floats('w', [m, m], randomValues(m * m, 7));
    b.reserve('y');
    b.output(b.op('MatMul', [x, w], 'gemm'), 'y', [m, m]);
    const session = await ort.InferenceSession.create(
      b.encode('gemm-peak', 'benchmark'),
      sessionOptions(cores),
    );
    const input = new ort.Tensor('float32', randomValues(m * m, 11), [m, m]);
    const best = await bestRunMs(session, input, quick ? 3 : 6);
    rows.push({
      probe: 'GEMM 2048x2048x2048',
      runtime: 'onnxruntime',
      threads: cores,
      gflopsPerSecond: round((2 * m ** 3) / 1e6 / best),
    });
  }
  const theory = theoreticalPeak(cores);
  if (theory) rows.push(theory);
  return rows;
}

/** The fastest of `runs` runs of a one-input ('x'), one-output ('y') session, in ms; releases the session. */
async function bestRunMs(session: InferenceSession, input: OrtTensor, runs: number): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const out = await session.run({ x: input });
    best = Math.min(best, performance.now() - start);
    out.y.dispose();
  }
  await session.release();
  return best;
}

async function benchConvPeak(backend: string, quick: boolean, cores: number): Promise<PeakRow[]> {
  const [n, size, channels] = [32, 96, 64];
  const gflop = (2 * n * size * size * channels * channels * 9) / 1e9;
  const inputValues = randomValues(n * size * size * channels, 3);
  const weightValues = randomValues(channels * channels * 9, 5).map((v) => (v - 0.5) / 10);
  const rows: PeakRow[] = [];

  const ort = onnxRuntime();
  if (ort) {
    const b = new GraphBuilder();
    const x = b.input('x', [n, channels, size, size]);
    const w = b.floats('w', [channels, channels, 3, 3], weightValues);
    b.reserve('y');
    const conv = b.op('Conv', [x, w], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    b.output(conv, 'y', [n, channels, size, size]);
    const bytes = b.encode('conv-peak', 'benchmark');
    const input = new ort.Tensor('float32', inputValues, [n, channels, size, size]);
    for (const threads of [...new Set([1, cores])]) {
      const session = await ort.InferenceSession.create(bytes, sessionOptions(threads));
      const best = await bestRunMs(session, input, quick ? 3 : 5);
      rows.push({
        probe: CONV,
        runtime: 'onnxruntime',
        threads,
        gflopsPerSecond: round((gflop * 1000) / best),
      });
    }
  }

  const x = tf.tensor4d(inputValues, [n, size, size, channels]);
  const w = tf.tensor4d(weightValues, [3, 3, channels, channels]);
  let best = Infinity;
  for (let i = 0; i < (quick ? 2 : 3); i++) {
    const start = performance.now();
    // void: tidy walks whatever the callback returns, and a 19M-value array takes a minute to walk.
    tf.tidy(() => void tf.conv2d(x, w, 1, 'same').dataSync());
    best = Math.min(best, performance.now() - start);
  }
  tf.dispose([x, w]);
  rows.push({
    probe: CONV,
    runtime: `tfjs-${backend}`,
    threads: 1,
    gflopsPerSecond: round((gflop * 1000) / best),
  });
  return rows;
}
