import { JET_STOPS, legendGradient } from '../../console/src/heatmap-legend';
import { JET } from '../../src/ml/explanation/heatmap';

describe("the console's heat-map legend", () => {
  it('shows the very colour stops the API renders its heat maps with', () => {
    expect(JET_STOPS).toBe(JET);
    expect(JET).toHaveLength(9);
  });

  it('spreads them evenly from no evidence (left) to the most (right)', () => {
    const gradient = legendGradient();
    expect(gradient.startsWith('linear-gradient(to right, rgb(0, 0, 128) 0.0%, rgb(0, 0, 255) 12.5%')).toBe(
      true,
    );
    expect(gradient.endsWith('rgb(128, 0, 0) 100.0%)')).toBe(true);
  });
});
