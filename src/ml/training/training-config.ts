import { badInput } from '../../errors';
import {
  type Architecture,
  isArchitecture,
  MAX_INPUT_SIZE,
  MIN_INPUT_SIZE,
} from '../models/architecture-names';
import { FUSION_KINDS, type FusionKind } from '../features/fusion';

/**
 * The largest training batch, for the API (services/training.ts) and train() alike: batch norm and the
 * ONNX training graph hold the whole batch's activations, and a worker's memory is bounded.
 */
export const MAX_BATCH_SIZE = 256;

export interface TrainingConfig {
  architecture: Architecture;
  inputSize: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Epochs without a lower validation loss before training stops early. */
  patience: number;
  /** 'weights': loss weighted by inverse class frequency; 'sampling': class-balanced draws per epoch. */
  classBalance: 'weights' | 'sampling' | 'none';
  augment: boolean;
  seed: number;
  /** Hue, saturation and channel-gain jitter in augmentation (see augment in image/preprocess); 0 = off. */
  colourJitter: number;
  /** After training, set batch norm's moving statistics to the training images' exact ones (batch-norm.ts). */
  recomputeBatchNorm: boolean;
  /** Serve (and evaluate) the mean probability over the 8 flips and quarter turns of the cell. */
  testTimeAugmentation: boolean;
  /** Fuse the CNN's output with the measured cell features (FUSION_KINDS in fusion.ts). */
  fusion: FusionKind;
}

/**
 * Every lever of the recipe off. Two uses, one meaning: what a config written before a lever existed
 * meant (its "off" value, not today's default, so a checkpoint or job from then resumes and evaluates as
 * it would have), and the plain CNN the levers are measured against (`--recipe plain`).
 */
export const RECIPE_LEVERS_OFF: Pick<
  TrainingConfig,
  'colourJitter' | 'recomputeBatchNorm' | 'testTimeAugmentation' | 'fusion'
> = {
  colourJitter: 0,
  recomputeBatchNorm: false,
  testTimeAugmentation: false,
  fusion: 'none',
};

/**
 * The recipe every training job starts from: what won in subject-grouped cross-validation on the real
 * C-NMC sample (`lymphoscope cv`, figures and the levers that lost in docs/ML.md). Colour jitter buys
 * robustness to other labs' stains, test-time augmentation a steadier call, the texture blend (the network's
 * log-odds averaged with a ridge model of the cell's morphology and chromatin texture) a better ranking of
 * blasts; batch-norm recomputation and the morphology-only fusions added nothing there and stay off.
 */
export const DEFAULT_TRAINING_CONFIG: TrainingConfig = {
  architecture: 'lymphonet',
  inputSize: 96,
  // At 40, a quarter of the cross-validation folds still improved in their last epochs; early stopping
  // ends the others well before 60.
  epochs: 60,
  batchSize: 32,
  learningRate: 0.001,
  patience: 8,
  classBalance: 'weights',
  augment: true,
  seed: 1,
  colourJitter: 0.2,
  recomputeBatchNorm: false,
  testTimeAugmentation: true,
  fusion: 'texture-blend',
};

/** Checks every field's range; returns a copy so later mutation of the input cannot change a run. */
export function validateTrainingConfig(config: TrainingConfig): TrainingConfig {
  const c = { ...RECIPE_LEVERS_OFF, ...config };
  const int = (name: keyof TrainingConfig, min: number, max: number) => {
    const v = c[name] as unknown;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw badInput(`Training config '${name}' must be an integer from ${min} to ${max}, got ${String(v)}.`);
    }
  };
  if (!isArchitecture(String(c.architecture)))
    throw badInput(`Unknown architecture '${String(c.architecture)}'.`);
  int('inputSize', MIN_INPUT_SIZE, MAX_INPUT_SIZE);
  int('epochs', 1, 1000);
  int('batchSize', 1, MAX_BATCH_SIZE);
  int('patience', 1, 1000);
  int('seed', 0, 2 ** 31 - 1);
  if (!(c.learningRate > 0 && c.learningRate <= 1))
    throw badInput(`learningRate must be in (0, 1], got ${c.learningRate}.`);
  if (!['weights', 'sampling', 'none'].includes(c.classBalance)) {
    throw badInput(`classBalance must be 'weights', 'sampling' or 'none', got '${String(c.classBalance)}'.`);
  }
  if (typeof c.augment !== 'boolean') throw badInput('augment must be true or false.');
  if (!(c.colourJitter >= 0 && c.colourJitter <= 1))
    throw badInput(`colourJitter must be from 0 to 1, got ${c.colourJitter}.`);
  if (typeof c.recomputeBatchNorm !== 'boolean') throw badInput('recomputeBatchNorm must be true or false.');
  if (typeof c.testTimeAugmentation !== 'boolean')
    throw badInput('testTimeAugmentation must be true or false.');
  if (!(FUSION_KINDS as readonly string[]).includes(c.fusion)) {
    throw badInput(
      `fusion must be one of ${FUSION_KINDS.map((k) => `'${k}'`).join(', ')}, got '${String(c.fusion)}'.`,
    );
  }
  return c;
}
