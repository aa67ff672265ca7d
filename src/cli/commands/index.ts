/**
 * The model commands of `lymphoscope` (src/cli/index.ts dispatches to them), one file each: train,
 * evaluate, predict and cv. upload and bootstrap talk to a deployment and live beside src/cli/index.ts.
 */
export { configFromFlags, PLAIN_RECIPE, type Flags } from './flags';
export { DEFAULT_MODEL_DIR } from './model-dir';
export { cvCommand } from './cv';
export { evaluateCommand } from './evaluate';
export { predictCommand } from './predict';
export { readCvSummary, trainCommand } from './train';
