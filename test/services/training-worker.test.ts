import { loadConfig } from '../../src/config';
import { recipeOf } from '../../src/services/training-worker';

describe('the training worker: its recipe', () => {
  it('takes folds and seeds from the configuration (LYMPHOSCOPE_RECIPE_*), 5 x 3 when unset or empty', () => {
    expect(recipeOf({ config: loadConfig({}) })).toEqual({ folds: 5, seeds: 3 });
    const empty = { LYMPHOSCOPE_RECIPE_FOLDS: '', LYMPHOSCOPE_RECIPE_SEEDS: '' };
    expect(recipeOf({ config: loadConfig(empty) })).toEqual({ folds: 5, seeds: 3 });
    const set = { LYMPHOSCOPE_RECIPE_FOLDS: '4', LYMPHOSCOPE_RECIPE_SEEDS: '2' };
    expect(recipeOf({ config: loadConfig(set) })).toEqual({ folds: 4, seeds: 2 });
    // The deps' own options win (the fan-out tests pass theirs).
    expect(recipeOf({ config: loadConfig(set), recipe: { folds: 3, seeds: 1 } })).toEqual({
      folds: 3,
      seeds: 1,
    });
  });

  it.each([
    ['LYMPHOSCOPE_RECIPE_FOLDS', 'five', 'folds must be an integer from 2 to 20, got NaN.'],
    ['LYMPHOSCOPE_RECIPE_FOLDS', '1', 'folds must be an integer from 2 to 20, got 1.'],
    ['LYMPHOSCOPE_RECIPE_FOLDS', '2.5', 'folds must be an integer from 2 to 20, got 2.5.'],
    ['LYMPHOSCOPE_RECIPE_SEEDS', '0', 'seeds must be an integer from 1 to 10, got 0.'],
    ['LYMPHOSCOPE_RECIPE_SEEDS', '11', 'seeds must be an integer from 1 to 10, got 11.'],
  ])('refuses %s=%s at load, in the words a job would fail with', (name, value, words) => {
    expect(() => loadConfig({ [name]: value })).toThrow(`Invalid configuration: ${name}: ${words}`);
  });

  it('refuses options out of bounds passed in directly', () => {
    expect(() => recipeOf({ recipe: { folds: 21, seeds: 1 } })).toThrow(
      'folds must be an integer from 2 to 20, got 21.',
    );
  });
});
