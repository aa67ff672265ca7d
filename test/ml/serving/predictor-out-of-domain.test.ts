import type * as tf from '@tensorflow/tfjs';
import { buildModel } from '../../../src/ml/models/architectures';
import { decodeImage } from '../../../src/ml/image/decode';
import { emptyField, photoImage, severalCells } from '../../../src/ml/image/foreign';
import { applyLabShift } from '../../../src/ml/image/lab-shift';
import type { RgbImage } from '../../../src/ml/image/types';
import {
  domainFeatures,
  domainScore,
  fitDomainModel,
  fitDomainThreshold,
  outOfFoldDomainScores,
} from '../../../src/ml/features/out-of-domain';
import { analyzeCell, type DecisionRule } from '../../../src/ml/serving/predictor';
import { initRuntime, liveTensors } from '../../../src/ml/runtime';
import { kFoldBySubject, parseCnmcFilename } from '../../../src/ml/data/splits';
import { sampleImages } from '../../helpers/sample';
import { builtNetwork } from '../../../src/ml/serving/tfjs-network';

const SIZE = 32;
let model: tf.LayersModel;
let heldOut: RgbImage[];
let rule: DecisionRule & { outOfDomain: NonNullable<DecisionRule['outOfDomain']> };
const plainRule: DecisionRule = { inputSize: SIZE, threshold: 0.5, reviewLow: 0.4, reviewHigh: 0.5 };

beforeAll(async () => {
  await initRuntime();
  model = buildModel('lymphonet', SIZE, 5);
  const samples = sampleImages();
  const decoded = await Promise.all(samples.map((s) => decodeImage(s.bytes)));
  const cells = samples.map((s, i) => ({
    id: s.name,
    label: (s.label === 'ALL' ? 1 : 0) as 0 | 1,
    subjectId: parseCnmcFilename(s.name)!.subjectId,
    image: decoded[i],
    features: domainFeatures(decoded[i]),
  }));
  // A new patient's cells: the subjects of one subject-grouped fold are left out of the domain model.
  const [fold] = kFoldBySubject(cells, 5, 1);
  const training = fold.train;
  heldOut = fold.test.map((c) => c.image);
  // As training does it: the model on all training cells, the threshold on their out-of-fold scores.
  const threshold = fitDomainThreshold(outOfFoldDomainScores(training, 5, 1), 0.05);
  rule = {
    ...plainRule,
    outOfDomain: { ...fitDomainModel(training.map((c) => c.features)), threshold },
  };
}, 300_000);
afterAll(() => model.dispose());

describe('analyzeCell with an out-of-domain model in the rule', () => {
  it("flags at most 10% of new subjects' real cells, exactly those over the threshold", async () => {
    expect(heldOut.length).toBeGreaterThanOrEqual(10);
    let flagged = 0;
    for (const image of heldOut) {
      const served = await analyzeCell(builtNetwork(model), rule, image, { explain: false });
      expect(served.outOfDomainScore).toBeCloseTo(domainScore(rule.outOfDomain, domainFeatures(image)), 10);
      const over = served.outOfDomainScore! > rule.outOfDomain.threshold;
      expect(served.reviewReasons.includes('OUT_OF_DOMAIN')).toBe(over);
      if (over) flagged++;
    }
    expect(flagged / heldOut.length).toBeLessThanOrEqual(0.1);
  }, 300_000);

  it('flags a grey background, a pale stain, several cells, a blank field and a photo, and asks for review', async () => {
    const foreign = [
      await applyLabShift(heldOut[0], 'grey-background'),
      await applyLabShift(heldOut[0], 'pale'),
      severalCells([heldOut[0], heldOut[1], heldOut[2]]),
      emptyField(4, 'blank-field'),
      photoImage(5),
    ];
    const before = liveTensors();
    for (const [k, image] of foreign.entries()) {
      const served = await analyzeCell(builtNetwork(model), rule, image, { explain: k === 0 });
      expect(served.outOfDomainScore!).toBeGreaterThan(rule.outOfDomain.threshold);
      expect(served.reviewReasons).toContain('OUT_OF_DOMAIN');
      expect(served.needsReview).toBe(true);
    }
    expect(liveTensors()).toBe(before);
  }, 300_000);

  it('changes nothing for a card without one (null score, no OUT_OF_DOMAIN)', async () => {
    const image = emptyField(4, 'blank-field');
    for (const r of [plainRule, { ...plainRule, outOfDomain: null }]) {
      const served = await analyzeCell(builtNetwork(model), r, image, { explain: false });
      expect(served.outOfDomainScore).toBeNull();
      expect(served.reviewReasons).not.toContain('OUT_OF_DOMAIN');
      expect(served.timings.outOfDomainMs).toBe(0);
    }
  });

  it('refuses a damaged out-of-domain model instead of serving without it', async () => {
    const damaged = { ...rule, outOfDomain: { ...rule.outOfDomain, center: [1] } };
    await expect(analyzeCell(builtNetwork(model), damaged, heldOut[0], { explain: false })).rejects.toThrow(
      /malformed/,
    );
    const noThreshold = { ...rule, outOfDomain: { ...rule.outOfDomain, threshold: NaN } };
    await expect(
      analyzeCell(builtNetwork(model), noThreshold, heldOut[0], { explain: false }),
    ).rejects.toThrow(/threshold/);
  });
});
