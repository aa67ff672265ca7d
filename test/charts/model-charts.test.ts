import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { renderModelCharts, type ChartSource } from '../../src/charts/model-charts';
import { computeMetrics, prCurve, rocCurve } from '../../src/ml/evaluation/metrics';

/** The hand-computed case of metrics.test.ts: 6 ALL, 4 normal, threshold 0.5 (tp 4, fp 1, tn 3, fn 2). */
const labels = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
const probs = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.65, 0.45, 0.2, 0.1];
const EPOCHS = 5;

function card(overrides: Partial<ChartSource> = {}): ChartSource {
  return {
    history: Array.from({ length: EPOCHS }, (_, i) => ({
      epoch: i + 1,
      loss: 0.7 / (i + 1),
      valLoss: 0.8 / (i + 1),
      accuracy: 0.5 + i / 20,
      valAccuracy: 0.45 + i / 20,
    })),
    bestEpoch: 4,
    rocCurve: rocCurve(labels, probs).map((p) => ({ x: p.fpr, y: p.tpr, threshold: p.threshold })),
    prCurve: prCurve(labels, probs).map((p) => ({ x: p.recall, y: p.precision, threshold: p.threshold })),
    testMetrics: computeMetrics(labels, probs, 0.5),
    ...overrides,
  };
}

type Element = Record<string, unknown>;

/** The path/line/text elements under every <g> whose class names a mark, e.g. `curve` for `curve_marks`. */
function marks(svg: string, name: string): Element[] {
  const root = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(svg) as Element;
  const found: Element[] = [];
  const asList = (v: unknown) => (Array.isArray(v) ? v : v === undefined ? [] : [v]) as Element[];
  const walk = (node: Element) => {
    for (const g of asList(node.g)) {
      const classes = String(g.class ?? '').split(' ');
      if (classes.includes('role-mark') && classes.includes(`${name}_marks`)) {
        found.push(...asList(g.path), ...asList(g.line), ...asList(g.text));
      }
      walk(g);
    }
  };
  walk(root.svg as Element);
  return found;
}

/** Vertices of a line path: vega writes `M x,y L x,y ...` for linear and step interpolation. */
function vertices(d: unknown): Array<[number, number]> {
  return [...String(d).matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

describe('model charts rendered with vega-lite', () => {
  let charts: Map<string, string>;

  beforeAll(async () => {
    charts = await renderModelCharts(card());
  });

  it('renders three standalone, well-formed SVG documents', () => {
    expect([...charts.keys()]).toEqual(['training-curves', 'roc', 'pr']);
    for (const svg of charts.values()) {
      expect(XMLValidator.validate(svg)).toBe(true);
      expect(svg).toMatch(/^<\?xml[^>]*>\s*<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    }
  });

  it('draws loss and accuracy as training and validation series, one point per epoch, with the best epoch marked', () => {
    const svg = charts.get('training-curves')!;
    for (const metric of ['loss', 'accuracy']) {
      const lines = marks(svg, metric).filter((e) => e['aria-roledescription'] === 'line mark');
      expect(lines).toHaveLength(2);
      expect(lines.map((l) => l.stroke).sort()).toEqual(['#1f6fb4', '#e0701a']);
      for (const line of lines) expect(vertices(line.d)).toHaveLength(EPOCHS);
      const best = marks(svg, `${metric}_best_epoch`);
      expect(best).toHaveLength(1);
      expect(best[0]['aria-label']).toBe('epoch: 4');
    }
    // Points: two series in each of the two panels.
    expect(svg.match(/aria-roledescription="point"/g)).toHaveLength(4 * EPOCHS);
    // Training loss falls epoch after epoch, so its path climbs down the plot (SVG y grows downwards).
    const trainingLoss = marks(svg, 'loss').find((l) => l.stroke === '#1f6fb4')!;
    const ys = vertices(trainingLoss.d).map(([, y]) => y);
    expect([...ys].sort((a, b) => a - b)).toEqual(ys);
  });

  it('leaves out epochs whose loss is not a number instead of breaking the picture', async () => {
    const history = card().history.map((e) => (e.epoch === 3 ? { ...e, loss: NaN } : e));
    const svg = (await renderModelCharts(card({ history }))).get('training-curves')!;
    const trainingLoss = marks(svg, 'loss').find((l) => l.stroke === '#1f6fb4')!;
    expect(vertices(trainingLoss.d)).toHaveLength(EPOCHS - 1);
  });

  it('draws the ROC curve through every point of the card, with the chance line and the operating point', () => {
    const svg = charts.get('roc')!;
    const points = card().rocCurve;
    const [curve] = marks(svg, 'curve');
    const drawn = vertices(curve.d);
    expect(drawn).toHaveLength(points.length);
    // Unit square of 360 px: x = fpr * 360, y = (1 - tpr) * 360.
    drawn.forEach(([x, y], i) => {
      expect(x).toBeCloseTo(points[i].x * 360, 1);
      expect(y).toBeCloseTo((1 - points[i].y) * 360, 1);
    });
    expect(vertices(marks(svg, 'reference')[0].d)).toEqual([
      [0, 360],
      [360, 0],
    ]);
    // tp 4 / 6 ALL, fp 1 / 4 normal at threshold 0.5.
    expect(marks(svg, 'operating_point')[0]['aria-label']).toMatch(/: 0\.25; .*: 0\.6666/);
    expect(svg).toContain(`AUC ${card().testMetrics!.rocAuc!.toFixed(3)}`);
  });

  it('draws the precision-recall curve as steps (average precision adds rectangles) over the prevalence line', () => {
    const svg = charts.get('pr')!;
    const points = card().prCurve!;
    const drawn = vertices(marks(svg, 'curve')[0].d);
    expect(drawn).toHaveLength(2 * points.length - 1);
    // Prevalence of ALL: 6 of 10.
    const reference = vertices(marks(svg, 'reference')[0].d);
    expect(reference.map(([, y]) => y)).toEqual([144, 144]);
    expect(svg).toContain(`Average precision ${card().testMetrics!.prAuc!.toFixed(3)}`);
  });

  it('omits a chart it has no data for', async () => {
    const none = await renderModelCharts(card({ history: [], bestEpoch: null, prCurve: undefined }));
    expect([...none.keys()]).toEqual(['roc']);
    const oneClass = await renderModelCharts(card({ rocCurve: [], prCurve: [] }));
    expect([...oneClass.keys()]).toEqual(['training-curves']);
  });
});
