import { JET } from '../../src/ml/explanation/jet-scale';
import { h } from './dom';

/**
 * The colour scale of the heat maps the API renders (src/ml/explanation/heatmap.ts), from the module both use: from dark
 * blue (the least evidence shown) to dark red (the most). Where the model saw no evidence the cell is left
 * uncoloured, and the overlay's opacity grows with the evidence.
 */
export const JET_STOPS = JET;

/** The CSS gradient of the scale, left (no evidence) to right (the most). */
export function legendGradient(): string {
  const stops = JET_STOPS.map(
    ([r, g, b], i) => `rgb(${r}, ${g}, ${b}) ${((i / (JET_STOPS.length - 1)) * 100).toFixed(1)}%`,
  );
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

/** The legend shown under the cell while its heat map is. */
export function heatmapLegend(visible: boolean): HTMLElement {
  return h(
    'div',
    {
      id: 'heatmap-legend',
      class: visible ? 'heatmap-legend visible' : 'heatmap-legend',
      role: 'img',
      'aria-label': 'Heat map scale: blue, little influence on the call, to dark red, the most',
    },
    h('span', { class: 'muted' }, 'little'),
    h('span', { class: 'scale', style: `background: ${legendGradient()}` }),
    h('span', { class: 'muted' }, 'most'),
    h(
      'span',
      { class: 'muted caption' },
      "Grad-CAM: how much each region drove the model's call; uncoloured regions did not.",
    ),
  );
}
