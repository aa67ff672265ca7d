import { isArchitecture } from '../../ml/models/architecture-names';
import { FUSION_KINDS } from '../../ml/features/fusion';
import { DEFAULT_TRAINING_CONFIG, RECIPE_LEVERS_OFF, type TrainingConfig } from '../../ml/training/train';

export type Flags = Record<string, string | boolean | undefined>;

/** A numeric flag, or `fallback` when absent; anything not a number is refused. */
export const num = (flags: Flags, name: string, fallback: number): number => {
  const v = flags[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number (got ${String(v)}).`);
  return n;
};

const FUSIONS: ReadonlyArray<TrainingConfig['fusion']> = FUSION_KINDS;

/**
 * The training config the flags ask for: DEFAULT_TRAINING_CONFIG (or, with --recipe plain, the same
 * without any lever), then each flag. A lever flag and its --no- twin together are refused.
 */
export function configFromFlags(flags: Flags): TrainingConfig {
  const recipe = String(flags.recipe ?? 'default');
  if (recipe !== 'default' && recipe !== 'plain') throw new Error('--recipe must be default or plain.');
  const base: TrainingConfig = {
    ...DEFAULT_TRAINING_CONFIG,
    ...(recipe === 'plain' ? RECIPE_LEVERS_OFF : {}),
  };
  const arch = String(flags.arch ?? base.architecture);
  if (!isArchitecture(arch))
    throw new Error(`--arch must be one of majority, vanilla, seed-2x2x1x1, lymphonet (got ${arch}).`);
  const balance = String(flags['class-balance'] ?? base.classBalance);
  if (!['weights', 'sampling', 'none'].includes(balance))
    throw new Error('--class-balance must be weights, sampling or none.');
  const fusion = String(flags.fusion ?? base.fusion);
  if (!FUSIONS.includes(fusion as TrainingConfig['fusion']))
    throw new Error(`--fusion must be one of ${FUSIONS.join(', ')} (got ${fusion}).`);
  const toggle = (name: string, fallback: boolean): boolean => {
    if (flags[name] && flags[`no-${name}`])
      throw new Error(`--${name} and --no-${name} contradict each other.`);
    return flags[name] ? true : flags[`no-${name}`] ? false : fallback;
  };
  return {
    ...base,
    architecture: arch,
    inputSize: num(flags, 'input-size', base.inputSize),
    epochs: num(flags, 'epochs', base.epochs),
    batchSize: num(flags, 'batch-size', base.batchSize),
    learningRate: num(flags, 'lr', base.learningRate),
    patience: num(flags, 'patience', base.patience),
    classBalance: balance as TrainingConfig['classBalance'],
    augment: toggle('augment', base.augment),
    seed: num(flags, 'seed', base.seed),
    colourJitter: num(flags, 'colour-jitter', base.colourJitter),
    recomputeBatchNorm: toggle('bn-recompute', base.recomputeBatchNorm),
    testTimeAugmentation: toggle('tta', base.testTimeAugmentation),
    fusion: fusion as TrainingConfig['fusion'],
  };
}
