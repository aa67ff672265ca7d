/**
 * The names and bounds of the networks, apart from the TF.js code that builds them (architectures.ts):
 * the API validates a training request and the served model's topology with these alone, so its cold
 * start never loads TensorFlow.js for them.
 */

/**
 * The networks a training job may choose. 'majority' and 'vanilla' are the original study's baselines,
 * 'seed-2x2x1x1' its best net; 'lymphonet' is ours and the default.
 */
export type Architecture = 'majority' | 'vanilla' | 'seed-2x2x1x1' | 'lymphonet';

export const ARCHITECTURES: readonly Architecture[] = ['majority', 'vanilla', 'seed-2x2x1x1', 'lymphonet'];
export const DEFAULT_ARCHITECTURE: Architecture = 'lymphonet';

/** Grad-CAM reads the activations of the layer with this name; every CNN architecture has one. */
export const LAST_CONV_LAYER = 'last_conv';

export const MIN_INPUT_SIZE = 32;
export const MAX_INPUT_SIZE = 256;

export function isArchitecture(value: string): value is Architecture {
  return (ARCHITECTURES as readonly string[]).includes(value);
}
