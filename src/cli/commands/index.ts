/**
 * The model commands of `lymphoscope` (src/cli/index.ts dispatches to them), one file each: train,
 * evaluate, predict and cv. upload and bootstrap talk to a deployment and live beside src/cli/index.ts.
 */
export { configFromFlags, type Flags } from './flags';
export { cvCommand } from './cv';
export { evaluateCommand } from './evaluate';
export { predictCommand } from './predict';
export { readCvSummary, trainCommand } from './train';
