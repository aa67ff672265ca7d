/**
 * How many subject-grouped folds and seeds the out-of-fold decisions are fitted on, and the bounds on both.
 * This module imports nothing, so src/config.ts can check LYMPHOSCOPE_RECIPE_FOLDS / _SEEDS with the same rule
 * and the same words as a job's options without loading the training code.
 */
export interface RecipeOptions {
  /** Subject-grouped folds (default 5). */
  folds: number;
  /** Seeds run: config.seed, config.seed + 1, ... (default 3). */
  seeds: number;
}

export const DEFAULT_RECIPE_OPTIONS: RecipeOptions = { folds: 5, seeds: 3 };

const BOUNDS: Record<keyof RecipeOptions, { min: number; max: number }> = {
  folds: { min: 2, max: 20 },
  seeds: { min: 1, max: 10 },
};

/** What is wrong with a count of folds or seeds, in the words a caller sees; null when it is in bounds. */
export function recipeCountProblem(name: keyof RecipeOptions, value: number): string | null {
  const { min, max } = BOUNDS[name];
  return Number.isInteger(value) && value >= min && value <= max
    ? null
    : `${name} must be an integer from ${min} to ${max}, got ${value}.`;
}
