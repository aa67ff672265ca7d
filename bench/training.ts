import * as tf from '@tensorflow/tfjs';
import { estimateFlops } from '../src/ml/architectures';
import { syntheticCell } from '../src/ml/synthetic';
import { DEFAULT_TRAINING_CONFIG, type Example, train } from '../src/ml/train';
import { trainingStepOf } from './kernels';
import { buildReferenceNet } from './reference-net';
import { round, timeAsync } from './stats';

export interface TrainingRow {
  model: string;
  how: string;
  data: string;
  imagesPerSecond: number;
  /** Forward FLOPs x 3 (the backward pass costs about twice the forward) x images/s. */
  gflopsPerSecond: number;
}

/** Synthetic C-NMC-like cells drawn at the model's input size (src/ml/synthetic.ts), half of each class. */
export function syntheticExamples(count: number, size: number, firstSeed: number): Example[] {
  return Array.from({ length: count }, (_, i) => {
    const label = (i % 2) as 0 | 1;
    const cell = syntheticCell(firstSeed + i, { label, size });
    return { pixels: Float32Array.from(cell.data, (v) => v / 255), label };
  });
}

/**
 * Training throughput of the product's loop, train() in src/ml/train.ts (batch assembly, forward,
 * backward, Adam, batch-norm bookkeeping; validation excluded), on lymphonet at 96x96, batch 32, and a
 * bare training step of the reference network on the same backend.
 */
export async function benchTraining(quick: boolean): Promise<TrainingRow[]> {
  const size = 96;
  const batches = quick ? 3 : 6;
  const examples = syntheticExamples(32 * batches, size, 1);
  const validation = syntheticExamples(32, size, 10_000);
  let imagesPerSecond = 0;
  const result = await train({
    config: { ...DEFAULT_TRAINING_CONFIG, inputSize: size, epochs: 1, augment: false },
    train: examples,
    validation,
    // The first batch pays for XNNPACK operator creation; later progress reports average it away less.
    onProgress: (p) => (imagesPerSecond = p.imagesPerSecond),
  });
  const lymphonetGflop = estimateFlops(result.model!) / 1e9;
  result.model?.dispose();
  const rows: TrainingRow[] = [
    {
      model: 'lymphonet',
      how: `train(), 1 epoch of ${batches} batches of 32`,
      data: 'synthetic cells (src/ml/synthetic.ts) at 96x96',
      imagesPerSecond: round(imagesPerSecond),
      gflopsPerSecond: round(imagesPerSecond * 3 * lymphonetGflop),
    },
  ];

  const reference = buildReferenceNet(size);
  const referenceGflop = estimateFlops(reference) / 1e9;
  const step = trainingStepOf(reference, tf.train.adam(0.001));
  const ms = await timeAsync(step.step, quick ? 2 : 3);
  step.dispose();
  rows.push({
    model: 'reference-6x32',
    how: 'one training step (forward, backward, Adam) of batch 32',
    data: 'random pixels at 96x96',
    imagesPerSecond: round((32 * 1000) / ms),
    gflopsPerSecond: round(((32 * 1000) / ms) * 3 * referenceGflop),
  });
  return rows;
}
