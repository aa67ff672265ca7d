import { readFileSync } from 'node:fs';
import path from 'node:path';
import { rocCurve } from '../../src/ml/evaluation/metrics';
import { buildModelCard, type ModelCardInput } from '../../src/services/model-card';
import type { ModelCard } from '../../src/services/models';

/** The demo model's card, written by `lymphoscope train` on the 63 real C-NMC cells of data/cnmc-sample. */
const demo: ModelCard = JSON.parse(
  readFileSync(path.join(__dirname, '..', '..', 'data', 'demo-model', 'card.json'), 'utf8'),
);

/** What the CLI handed the builder for the demo card, read back from the card itself. */
const demoInput = (curve: ModelCardInput['curve']): ModelCardInput => ({
  config: demo.config!,
  trainedOnBackend: demo.trainedOnBackend,
  training: { trainingRuntime: demo.trainingRuntime!, history: demo.history, bestEpoch: demo.bestEpoch! },
  recipe: {
    decisions: demo.decisions!,
    fusion: demo.fusion ?? null,
    outOfDomain: demo.outOfDomain ?? null,
    outOfDomainReport: demo.outOfDomainReport ?? null,
  },
  crossValidation: demo.crossValidation,
  trainingImageSha256: [...demo.trainingImageSha256!].reverse(),
  testMetrics: demo.testMetrics,
  validationMetrics: demo.validationMetrics,
  lineage: demo.lineage,
  curve,
  morphologyNorms: demo.morphologyNorms,
  notes: demo.notes,
});

describe('buildModelCard', () => {
  it("rebuilds the demo model's card.json byte for byte, key order included (curves apart)", () => {
    const built = buildModelCard(demoInput({ labels: [0, 1], probabilities: [0.2, 0.8] }));
    // The curves are drawn from scores the card does not keep: compared on their own below.
    const { version: _v, createdAt: _c, ...stored } = demo;
    const rebuilt = { ...built, rocCurve: demo.rocCurve, prCurve: demo.prCurve };
    expect(JSON.stringify(rebuilt, null, 2)).toBe(JSON.stringify(stored, null, 2));
  });

  it('takes threshold, band and calibration from the decisions, and sorts the training hashes', () => {
    const input = demoInput({ labels: [0, 1], probabilities: [0.2, 0.8] });
    const card = buildModelCard(input);
    expect([card.threshold, card.reviewLow, card.reviewHigh]).toEqual([
      input.recipe.decisions.threshold,
      input.recipe.decisions.reviewLow,
      input.recipe.decisions.reviewHigh,
    ]);
    expect(card.calibration).toBe(input.recipe.decisions.calibration);
    expect(card.trainingImageSha256).toEqual([...input.trainingImageSha256].sort());
    expect(input.trainingImageSha256).not.toEqual(card.trainingImageSha256); // the input is not sorted in place
  });

  it('has no crossValidation key when none is given (the worker), and a null one when given null', () => {
    const { crossValidation: _omitted, ...workerInput } = demoInput({
      labels: [0, 1],
      probabilities: [0.2, 0.8],
    });
    expect('crossValidation' in buildModelCard(workerInput)).toBe(false);
    expect(buildModelCard({ ...workerInput, crossValidation: null })).toHaveProperty('crossValidation', null);
  });

  it('draws ROC and PR curves from the scores given, with JSON-safe thresholds', () => {
    const labels = [1, 1, 1, 0, 1, 0, 0, 0];
    const probabilities = [0.95, 0.9, 0.7, 0.65, 0.4, 0.3, 0.2, 0.05];
    const card = buildModelCard(demoInput({ labels, probabilities }));
    const expected = rocCurve(labels, probabilities);
    expect(card.rocCurve.map((p) => [p.x, p.y])).toEqual(expected.map((p) => [p.fpr, p.tpr]));
    expect(card.rocCurve[0]).toEqual({ x: 0, y: 0, threshold: null }); // +Infinity is no JSON number
    expect(card.rocCurve.at(-1)).toMatchObject({ x: 1, y: 1 });
    expect(card.prCurve!.every((p) => p.y >= 0 && p.y <= 1 && p.x >= 0 && p.x <= 1)).toBe(true);
    expect(JSON.parse(JSON.stringify(card.rocCurve))).toEqual(card.rocCurve);
  });
});
