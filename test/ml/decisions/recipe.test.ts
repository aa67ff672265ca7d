import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadFolder } from '../../../src/cli/folder';
import { domainApi } from '../../../src/ml/decisions/domain';
import { decodeImage } from '../../../src/ml/image/decode';
import { applyCalibration } from '../../../src/ml/decisions/calibration';
import {
  planFolds,
  pooledScores,
  runFold,
  type FoldOutput,
  type RecipeCell,
} from '../../../src/ml/decisions/out-of-fold';
import { fitDecisions, type OofScores } from '../../../src/ml/decisions/rule';
import { initRuntime } from '../../../src/ml/runtime';
import { DEFAULT_TRAINING_CONFIG, type TrainingConfig } from '../../../src/ml/training/train';

const SAMPLE = path.join(__dirname, '..', '..', '..', 'data', 'cnmc-sample');
// Small and fast, but a real network on the real 63 sample cells: the claim is about the rule, which must
// hold whatever the network's skill.
const config: TrainingConfig = {
  ...DEFAULT_TRAINING_CONFIG,
  architecture: 'vanilla',
  inputSize: 32,
  epochs: 12,
  patience: 4,
  testTimeAugmentation: false,
};

let cells: RecipeCell[];
let outputs: FoldOutput[];
beforeAll(async () => {
  await initRuntime();
  const domain = domainApi();
  cells = [];
  for (const image of await loadFolder(SAMPLE, config.inputSize)) {
    const decoded = await decodeImage(await readFile(image.file));
    cells.push({ ...image, domainFeatures: domain.domainFeatures(decoded) });
  }
  const byId = new Map(cells.map((c) => [c.id, c]));
  outputs = [];
  for (const task of planFolds(cells, config, { folds: 5, seeds: 1 })) {
    const run = await runFold(task, byId, config, { domain });
    if (run.status !== 'completed') throw new Error('fold did not complete');
    outputs.push(run.output);
  }
}, 600_000);

describe('decisions from out-of-fold scores, on the real C-NMC sample', () => {
  it('scores every cell exactly once per seed, by a fold model that never saw its subject', () => {
    const tasks = planFolds(cells, config, { folds: 5, seeds: 1 });
    const subjectOf = new Map(cells.map((c) => [c.id, c.subjectId]));
    for (const task of tasks) {
      const trained = new Set(task.trainIds.map((id) => subjectOf.get(id)));
      for (const id of task.testIds) expect(trained.has(subjectOf.get(id))).toBe(false);
    }
    const [oof] = pooledScores(outputs);
    expect([...oof.ids].sort()).toEqual(cells.map((c) => c.id).sort());
  });

  it('sends at least 98% of held-out blasts to ALL or review under the rule fitted on the pooled folds', () => {
    // What the card's out-of-fold figures claim: every blast scored by a network that never saw its
    // subject, against the calibrated threshold and band fitted on those pooled scores.
    const runs = pooledScores(outputs);
    const rule = fitDecisions(runs);
    const [oof] = runs;
    const blasts = oof.ids.filter((_, i) => oof.labels[i] === 1);
    // ALL or review: at or above the band's edge, or out of domain against its fold's held-out threshold.
    expect(oof.outOfDomain).toHaveLength(cells.length);
    const caught = oof.probabilities.filter(
      (p, i) =>
        oof.labels[i] === 1 &&
        (applyCalibration(rule.calibration, p) >= rule.reviewLow || oof.outOfDomain![i]),
    ).length;
    expect(blasts).toHaveLength(cells.filter((c) => c.label === 1).length);
    expect(caught / blasts.length).toBeGreaterThanOrEqual(0.98);
    expect(rule.outOfFold.allOrReviewSensitivity.mean).toBe(caught / blasts.length);
    expect(rule.reviewLow).toBeLessThan(rule.reviewHigh);
  });

  it('and on folds the rule never saw, as many as 31 blasts allow (the honest check of the margin)', () => {
    // For each fold, the rule is fitted on the OTHER folds' out-of-fold scores only, then judged on this
    // fold's blasts: new subjects, as in production. With 31 blasts one miss is 3.2%: on this sample a
    // subject whose blasts all score low (UID_5 here, UID_78 with the full recipe) is missed once even with
    // the normal tolerance margin (docs/ML.md), so this asserts at most one miss, not 98%.
    const [oof] = pooledScores(outputs);
    let blasts = 0;
    let caught = 0;
    for (let fold = 0; fold < 5; fold++) {
      const keep = (i: number) => oof.folds[i] !== fold;
      const rest: OofScores = {
        seed: oof.seed,
        ids: oof.ids.filter((_, i) => keep(i)),
        labels: oof.labels.filter((_, i) => keep(i)),
        folds: oof.folds.filter((_, i) => keep(i)),
        probabilities: oof.probabilities.filter((_, i) => keep(i)),
        outOfDomain: oof.outOfDomain!.filter((_, i) => keep(i)),
      };
      const rule = fitDecisions([rest]);
      oof.ids.forEach((_, i) => {
        if (keep(i)) return;
        // Its out-of-domain flag is judged against a threshold fitted on the other folds only.
        const allOrReview =
          applyCalibration(rule.calibration, oof.probabilities[i]) >= rule.reviewLow || oof.outOfDomain![i];
        if (oof.labels[i] !== 1) return;
        blasts++;
        if (allOrReview) caught++;
      });
    }
    expect(blasts).toBe(cells.filter((c) => c.label === 1).length);
    expect(blasts - caught).toBeLessThanOrEqual(1);
  });
});
