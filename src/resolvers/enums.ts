import type { Architecture as MlArchitecture } from '../ml/models/architecture-names';
import type { TrainingConfig } from '../ml/training/train';
import type {
  Architecture,
  ClassBalance,
  Fusion,
  TrainingConfig as GqlTrainingConfig,
} from '../generated/graphql';
import type { JobConfig } from '../services/training';

const ARCH: Record<Architecture, MlArchitecture> = {
  MAJORITY: 'majority',
  VANILLA: 'vanilla',
  SEED_2X2X1X1: 'seed-2x2x1x1',
  LYMPHONET: 'lymphonet',
};
const BALANCE: Record<ClassBalance, TrainingConfig['classBalance']> = {
  WEIGHTS: 'weights',
  SAMPLING: 'sampling',
  NONE: 'none',
};

const FUSION: Record<Fusion, TrainingConfig['fusion']> = {
  NONE: 'none',
  MORPHOLOGY_BLEND: 'morphology-blend',
  MORPHOLOGY_STACK: 'morphology-stack',
  TEXTURE_BLEND: 'texture-blend',
};

const invert = <K extends string, V extends string>(map: Record<K, V>) =>
  Object.fromEntries(Object.entries(map).map(([k, v]) => [v, k])) as Record<V, K>;
const ARCH_BACK = invert(ARCH);
const BALANCE_BACK = invert(BALANCE);
const FUSION_BACK = invert(FUSION);

export const architectureToMl = (a: Architecture): MlArchitecture => ARCH[a];
export const architectureFromMl = (a: MlArchitecture): Architecture => ARCH_BACK[a];
export const balanceToMl = (b: ClassBalance): TrainingConfig['classBalance'] => BALANCE[b];
export const fusionToMl = (f: Fusion): TrainingConfig['fusion'] => FUSION[f];
/** A config or card written before fusion existed served the network alone. */
export const fusionFromMl = (f: TrainingConfig['fusion'] | undefined): Fusion => FUSION_BACK[f ?? 'none'];

export function configToGraphql(config: JobConfig): GqlTrainingConfig {
  return {
    ...config,
    architecture: architectureFromMl(config.architecture),
    classBalance: BALANCE_BACK[config.classBalance],
    // Jobs and cards from before these levers existed used none of them.
    colourJitter: config.colourJitter ?? 0,
    testTimeAugmentation: config.testTimeAugmentation ?? false,
    fusion: fusionFromMl(config.fusion),
  };
}
