import { MAX_INPUT_SIZE, MIN_INPUT_SIZE } from '../../../src/ml/models/architecture-names';
import {
  DEFAULT_TRAINING_CONFIG,
  MAX_BATCH_SIZE,
  RECIPE_LEVERS_OFF,
  validateTrainingConfig,
} from '../../../src/ml/training/training-config';
import { resolveJobConfig, type StartTrainingInput } from '../../../src/services/training';

/** The API (resolveJobConfig) and train() (validateTrainingConfig) take and refuse the same configs. */
describe('training config bounds', () => {
  const viaApi = (input: Partial<StartTrainingInput>) => () =>
    resolveJobConfig({ datasetId: 'd', ...input } as StartTrainingInput, DEFAULT_TRAINING_CONFIG, 1000);
  const viaTrain = (change: Partial<typeof DEFAULT_TRAINING_CONFIG>) => () =>
    validateTrainingConfig({ ...DEFAULT_TRAINING_CONFIG, ...change });

  it.each([
    ['batchSize', 1, MAX_BATCH_SIZE, MAX_BATCH_SIZE + 1],
    ['inputSize', MIN_INPUT_SIZE, MAX_INPUT_SIZE, MAX_INPUT_SIZE + 1],
    ['inputSize', MIN_INPUT_SIZE, MIN_INPUT_SIZE, MIN_INPUT_SIZE - 1],
  ] as const)('%s: %d to %d both ways; %d neither', (field, low, high, outside) => {
    for (const ok of [low, high]) {
      expect(viaApi({ [field]: ok })).not.toThrow();
      expect(viaTrain({ [field]: ok })).not.toThrow();
    }
    expect(viaApi({ [field]: outside })).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT' }));
    expect(viaTrain({ [field]: outside })).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT' }));
  });

  it('reads a config written before the recipe levers existed with every lever off', () => {
    const old: Partial<typeof DEFAULT_TRAINING_CONFIG> = { ...DEFAULT_TRAINING_CONFIG };
    for (const lever of Object.keys(RECIPE_LEVERS_OFF)) delete old[lever as keyof typeof old];
    expect(validateTrainingConfig(old as typeof DEFAULT_TRAINING_CONFIG)).toEqual({
      ...DEFAULT_TRAINING_CONFIG,
      ...RECIPE_LEVERS_OFF,
    });
  });
});
