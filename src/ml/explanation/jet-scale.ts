/**
 * Matplotlib's "jet" in 9 stops: dark blue (no evidence) through green and yellow to dark red. The heat
 * map renderer (heatmap.ts) paints with it and the console's legend draws it, so it has no imports: the
 * console's browser bundle takes it as it is.
 */
export const JET: ReadonlyArray<readonly [number, number, number]> = [
  [0, 0, 128],
  [0, 0, 255],
  [0, 128, 255],
  [0, 255, 255],
  [128, 255, 128],
  [255, 255, 0],
  [255, 128, 0],
  [255, 0, 0],
  [128, 0, 0],
];
