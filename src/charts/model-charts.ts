import type { TopLevelSpec } from 'vega-lite';
import type { ChartName } from './chart-names';
import { renderSvg } from './render';

export interface CurvePoint {
  x: number;
  y: number;
  threshold: number | null;
}

/** What the charts read from a model card (ModelCard satisfies it). */
export interface ChartSource {
  history: Array<{ epoch: number; loss: number; accuracy: number; valLoss: number; valAccuracy: number }>;
  bestEpoch: number | null;
  /** Test split, x: false positive rate, y: true positive rate. */
  rocCurve: CurvePoint[];
  /** Test split, x: recall, y: precision. Absent on cards written before it was recorded. */
  prCurve?: CurvePoint[];
  testMetrics: {
    n: number;
    rocAuc: number | null;
    prAuc: number | null;
    sensitivity: number | null;
    specificity: number | null;
    precision: number | null;
    threshold: number;
    confusion: { tp: number; fn: number };
  } | null;
}

const WIDTH = 360;
const HEIGHT = 260;
const TRAINING_COLOR = '#1f6fb4';
const VALIDATION_COLOR = '#e0701a';
const OPERATING_POINT_COLOR = '#c0392b';
const SERIES = {
  domain: ['training', 'validation'],
  range: [TRAINING_COLOR, VALIDATION_COLOR],
};
const CONFIG = {
  font: 'DejaVu Sans, Helvetica, Arial, sans-serif',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  title: { fontSize: 14, anchor: 'start' as const },
};

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const fixed = (v: number | null | undefined) => (isFiniteNumber(v) ? v.toFixed(3) : 'n/a');

/**
 * Loss and accuracy per epoch, training beside validation, with the epoch whose weights were kept
 * marked: the picture that shows over- or under-fitting at a glance.
 */
export function trainingCurvesSpec(source: ChartSource): TopLevelSpec {
  const rows = source.history.flatMap((e) => [
    { epoch: e.epoch, metric: 'loss', split: 'training', value: e.loss },
    { epoch: e.epoch, metric: 'loss', split: 'validation', value: e.valLoss },
    { epoch: e.epoch, metric: 'accuracy', split: 'training', value: e.accuracy },
    { epoch: e.epoch, metric: 'accuracy', split: 'validation', value: e.valAccuracy },
  ]);
  const values = rows.filter((r) => isFiniteNumber(r.value));
  const panel = (metric: 'loss' | 'accuracy') => ({
    width: WIDTH,
    height: HEIGHT,
    title: metric === 'loss' ? 'Loss (binary cross-entropy)' : 'Accuracy',
    layer: [
      {
        name: metric,
        transform: [{ filter: { field: 'metric', equal: metric } }],
        mark: { type: 'line' as const, point: { filled: true, size: 36 }, strokeWidth: 2 },
        encoding: {
          x: {
            field: 'epoch',
            type: 'quantitative' as const,
            title: 'Epoch',
            axis: { tickMinStep: 1, format: 'd' },
          },
          y: {
            field: 'value',
            type: 'quantitative' as const,
            title: metric,
            scale: metric === 'accuracy' ? { domain: [0, 1] } : { zero: true },
          },
          color: { field: 'split', type: 'nominal' as const, title: null, scale: SERIES },
        },
      },
      ...(source.bestEpoch !== null
        ? [
            {
              name: `${metric}_best_epoch`,
              data: { values: [{ epoch: source.bestEpoch }] },
              mark: { type: 'rule' as const, strokeDash: [4, 4], color: '#777' },
              encoding: { x: { field: 'epoch', type: 'quantitative' as const } },
            },
          ]
        : []),
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    description: 'Training and validation loss and accuracy per epoch',
    data: { values },
    hconcat: [panel('loss'), panel('accuracy')],
    config: CONFIG,
  } as TopLevelSpec;
}

/** Test-split ROC curve with the chance diagonal and the operating point the model's threshold picks. */
export function rocSpec(source: ChartSource): TopLevelSpec {
  const m = source.testMetrics;
  const operating =
    m && isFiniteNumber(m.sensitivity) && isFiniteNumber(m.specificity)
      ? [{ x: 1 - m.specificity, y: m.sensitivity, label: `threshold ${m.threshold.toFixed(2)}` }]
      : [];
  return curveSpec({
    title: 'ROC curve, test split',
    subtitle: `AUC ${fixed(m?.rocAuc)} · n = ${m?.n ?? 0} cells`,
    description: 'Receiver operating characteristic on the held-out test split',
    points: source.rocCurve,
    xTitle: 'False positive rate (1 - specificity)',
    yTitle: 'True positive rate (sensitivity)',
    // Linear segments: the trapezoids the reported AUC sums.
    interpolate: 'linear',
    reference: [
      { x: 0, y: 0 },
      { x: 1, y: 1 },
    ],
    referenceLabel: 'chance',
    operating,
  });
}

/** Test-split precision-recall curve with the prevalence of ALL (a random classifier's precision). */
export function prSpec(source: ChartSource): TopLevelSpec {
  const m = source.testMetrics;
  const prevalence = m && m.n > 0 ? (m.confusion.tp + m.confusion.fn) / m.n : null;
  const operating =
    m && isFiniteNumber(m.sensitivity) && isFiniteNumber(m.precision)
      ? [{ x: m.sensitivity, y: m.precision, label: `threshold ${m.threshold.toFixed(2)}` }]
      : [];
  return curveSpec({
    title: 'Precision-recall curve, test split',
    subtitle: `Average precision ${fixed(m?.prAuc)} · n = ${m?.n ?? 0} cells`,
    description: 'Precision against recall of ALL on the held-out test split',
    points: source.prCurve ?? [],
    xTitle: 'Recall (sensitivity)',
    yTitle: 'Precision',
    // Steps: average precision is the sum of these rectangles, with no interpolation between points.
    interpolate: 'step-before',
    reference:
      prevalence === null
        ? []
        : [
            { x: 0, y: prevalence },
            { x: 1, y: prevalence },
          ],
    referenceLabel: 'prevalence',
    operating,
  });
}

function curveSpec(options: {
  title: string;
  subtitle: string;
  description: string;
  points: CurvePoint[];
  xTitle: string;
  yTitle: string;
  interpolate: 'linear' | 'step-before';
  reference: Array<{ x: number; y: number }>;
  referenceLabel: string;
  operating: Array<{ x: number; y: number; label: string }>;
}): TopLevelSpec {
  const unit = { domain: [0, 1] };
  const x = { field: 'x', type: 'quantitative' as const, title: options.xTitle, scale: unit };
  const y = { field: 'y', type: 'quantitative' as const, title: options.yTitle, scale: unit };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    description: options.description,
    title: { text: options.title, subtitle: options.subtitle },
    width: WIDTH,
    height: WIDTH,
    layer: [
      {
        name: 'reference',
        data: { values: options.reference },
        mark: { type: 'line', strokeDash: [5, 5], color: '#999', strokeWidth: 1 },
        encoding: { x, y },
      },
      {
        name: 'curve',
        data: { values: options.points.map((p) => ({ x: p.x, y: p.y, threshold: p.threshold })) },
        mark: { type: 'line', interpolate: options.interpolate, color: TRAINING_COLOR, strokeWidth: 2 },
        // Points are already ordered along the curve (strictest threshold first); sorting by x would
        // scramble the vertical steps.
        encoding: { x, y, order: { value: 0 } },
      },
      {
        name: 'operating_point',
        data: { values: options.operating },
        mark: { type: 'point', filled: true, size: 90, color: OPERATING_POINT_COLOR },
        encoding: { x, y },
      },
      {
        data: { values: options.operating },
        mark: { type: 'text', align: 'left', dx: 8, dy: -8, color: OPERATING_POINT_COLOR },
        encoding: { x, y, text: { field: 'label' } },
      },
      {
        data: { values: options.reference.slice(-1) },
        mark: { type: 'text', align: 'right', dy: -6, color: '#777' },
        encoding: { x, y, text: { value: options.referenceLabel } },
      },
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * Every chart the card has data for, as SVG documents. A chart without data (no epochs, a one-class
 * test split) is left out rather than drawn empty.
 */
export async function renderModelCharts(source: ChartSource): Promise<Map<ChartName, string>> {
  const specs: Array<[ChartName, TopLevelSpec | null]> = [
    ['training-curves', source.history.length > 0 ? trainingCurvesSpec(source) : null],
    ['roc', source.rocCurve.length > 1 ? rocSpec(source) : null],
    ['pr', (source.prCurve?.length ?? 0) > 1 ? prSpec(source) : null],
  ];
  const charts = new Map<ChartName, string>();
  for (const [name, spec] of specs) if (spec) charts.set(name, await renderSvg(spec));
  return charts;
}
