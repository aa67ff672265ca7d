import type * as tf from '@tensorflow/tfjs';
import { buildModel } from '../../src/ml/architectures';
import { decodeImage } from '../../src/ml/image/decode';
import { emptyField, photoImage } from '../../src/ml/image/foreign';
import { applyLabShift, zoom } from '../../src/ml/image/lab-shift';
import type { RgbImage } from '../../src/ml/image/types';
import {
  domainFeatures,
  domainScore,
  fitDomainModel,
  fitDomainThreshold,
  outOfFoldDomainScores,
} from '../../src/ml/out-of-domain';
import { analyzeCell, type DecisionRule } from '../../src/ml/predictor';
import { initRuntime, liveTensors } from '../../src/ml/runtime';
import { parseCnmcFilename } from '../../src/ml/splits';
import { sampleImages } from '../helpers/sample';

const SIZE = 32;
/** The README's example blast; its subject is left out of the domain model, as a new patient's would be. */
const HELD_OUT_SUBJECT = '11';

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
  const training = cells.filter((c) => c.subjectId !== HELD_OUT_SUBJECT);
  heldOut = cells.filter((c) => c.subjectId === HELD_OUT_SUBJECT).map((c) => c.image);
  // As training does it: the model on all training cells, the threshold on their out-of-fold scores.
  const threshold = fitDomainThreshold(outOfFoldDomainScores(training, 5, 1), 0.05);
  rule = {
    ...plainRule,
    outOfDomain: { ...fitDomainModel(training.map((c) => c.features)), threshold },
  };
});
afterAll(() => model.dispose());

describe('analyzeCell with an out-of-domain model in the rule', () => {
  it("does not flag a new subject's real cells, and reports their score", async () => {
    expect(heldOut.length).toBeGreaterThan(0);
    for (const image of heldOut) {
      const served = await analyzeCell(model, rule, image, { explain: false });
      expect(served.outOfDomainScore).toBeCloseTo(domainScore(rule.outOfDomain, domainFeatures(image)), 10);
      expect(served.outOfDomainScore!).toBeLessThanOrEqual(rule.outOfDomain.threshold);
      expect(served.reviewReasons).not.toContain('OUT_OF_DOMAIN');
    }
  });

  it('flags a grey background, a 1.5x zoom, a blank field and a photo, and asks for review', async () => {
    const foreign = [
      await applyLabShift(heldOut[0], 'grey-background'),
      await zoom(heldOut[0], 1.5),
      emptyField(4, 'blank-field'),
      photoImage(5),
    ];
    const before = liveTensors();
    for (const image of foreign) {
      const served = await analyzeCell(model, rule, image, { explain: true });
      expect(served.outOfDomainScore!).toBeGreaterThan(rule.outOfDomain.threshold);
      expect(served.reviewReasons).toContain('OUT_OF_DOMAIN');
      expect(served.needsReview).toBe(true);
    }
    expect(liveTensors()).toBe(before);
  });

  it('changes nothing for a card without one (null score, no OUT_OF_DOMAIN)', async () => {
    const image = emptyField(4, 'blank-field');
    for (const r of [plainRule, { ...plainRule, outOfDomain: null }]) {
      const served = await analyzeCell(model, r, image, { explain: false });
      expect(served.outOfDomainScore).toBeNull();
      expect(served.reviewReasons).not.toContain('OUT_OF_DOMAIN');
      expect(served.timings.outOfDomainMs).toBe(0);
    }
  });

  it('refuses a damaged out-of-domain model instead of serving without it', async () => {
    const damaged = { ...rule, outOfDomain: { ...rule.outOfDomain, center: [1] } };
    await expect(analyzeCell(model, damaged, heldOut[0], { explain: false })).rejects.toThrow(/malformed/);
    const noThreshold = { ...rule, outOfDomain: { ...rule.outOfDomain, threshold: NaN } };
    await expect(analyzeCell(model, noThreshold, heldOut[0], { explain: false })).rejects.toThrow(
      /threshold/,
    );
  });
});
