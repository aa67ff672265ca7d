/**
 * The pictures stored with every model version, by the file name they get under models/<version>/charts/.
 * Apart from the renderer, so that the API, which only links to them, does not load vega.
 */
export const CHART_NAMES = ['training-curves', 'roc', 'pr'] as const;
export type ChartName = (typeof CHART_NAMES)[number];
