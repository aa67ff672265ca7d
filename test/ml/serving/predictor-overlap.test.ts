import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { decodeImage } from '../../../src/ml/image/decode';
import { applyLabShift } from '../../../src/ml/image/lab-shift';
import { otherDihedralViews, toModelInput } from '../../../src/ml/image/preprocess';
import type { RgbImage } from '../../../src/ml/image/types';
import { measureMorphology } from '../../../src/ml/features/morphology';
import { fuse } from '../../../src/ml/features/fusion';
import { domainFeatures, domainScore } from '../../../src/ml/features/out-of-domain';
import { applyCalibration } from '../../../src/ml/decisions/calibration';
import { renderHeatmapPng } from '../../../src/ml/explanation/heatmap';
import { loadModel } from '../../../src/ml/models/model-io';
import { exportOnnx } from '../../../src/ml/onnx/export';
import { OnnxClassifier, onnxRuntime } from '../../../src/ml/onnx/session';
import { analyzeCell, type DecisionRule } from '../../../src/ml/serving/predictor';
import { reviewReasons } from '../../../src/ml/serving/decision';
import { initRuntime, liveTensors } from '../../../src/ml/runtime';
import { sampleImages } from '../../helpers/sample';
import { builtNetwork } from '../../../src/ml/serving/tfjs-network';

/**
 * analyzeCell overlaps its parts (the resize on the thread pool while the cell is measured, the heat
 * map's PNG encode while the other views are scored). Here the same analysis is put together from
 * the same parts one after the other, on real C-NMC cells and the demo model its card was fitted
 * with: every field must come out the same, to the last bit, and the PNG byte for byte.
 */
const DEMO_DIR = path.join(__dirname, '..', '..', '..', 'data', 'demo-model');
let model: tf.LayersModel;
let rule: DecisionRule;
let onnx: OnnxClassifier | null = null;
let cells: RgbImage[];

beforeAll(async () => {
  await initRuntime();
  model = await loadModel({
    modelJson: JSON.parse(readFileSync(path.join(DEMO_DIR, 'model.json'), 'utf8')),
    weights: readFileSync(path.join(DEMO_DIR, 'weights.bin')),
  });
  rule = JSON.parse(readFileSync(path.join(DEMO_DIR, 'card.json'), 'utf8')) as DecisionRule;
  if (onnxRuntime()) onnx = await OnnxClassifier.create(exportOnnx(model).bytes, rule.inputSize);
  // Every ninth sample cell, plus one on another lab's grey background (masked before the network).
  const samples = sampleImages().filter((_, k) => k % 9 === 0);
  cells = await Promise.all(samples.map((s) => decodeImage(s.bytes)));
  cells.push(await applyLabShift(cells[0], 'grey-background'));
}, 120_000);
afterAll(async () => {
  await onnx?.dispose();
  model.dispose();
});

/** The analysis one step after the other, each step awaited before the next starts. */
async function sequential(image: RgbImage, runtime: OnnxClassifier) {
  const pixels = await toModelInput(image, rule.inputSize);
  const { probabilityAll: first, heatmap } = await runtime.explain(pixels);
  const rest = await runtime.predict(otherDihedralViews(pixels, rule.inputSize), 7);
  const networkProbability = (first + rest.reduce((a, b) => a + b, 0)) / 8;
  const morphology = measureMorphology(image);
  const fused = rule.fusion ? fuse(rule.fusion, networkProbability, morphology) : networkProbability;
  const probabilityAll = applyCalibration(rule.calibration, fused);
  const outOfDomainScore = rule.outOfDomain ? domainScore(rule.outOfDomain, domainFeatures(image)) : null;
  const heatmapPng = await renderHeatmapPng(image, heatmap, rule.inputSize);
  const outOfDomain = outOfDomainScore !== null && outOfDomainScore > rule.outOfDomain!.threshold;
  return {
    probabilityAll,
    networkProbability,
    morphology,
    outOfDomainScore,
    heatmapPng,
    reviewReasons: reviewReasons(rule, probabilityAll, outOfDomain),
  };
}

const analysed = (image: RgbImage) => analyzeCell(builtNetwork(model), rule, image, { explain: true, onnx });

describe('analyzeCell with its parts overlapped', () => {
  it('gives the analysis of the sequential pass on real cells, one at a time and several at once', async () => {
    if (!onnx) return; // the sequential pass below needs onnxruntime's explain()
    expect(rule.testTimeAugmentation).toBe(true);
    expect(rule.outOfDomain).toBeTruthy();
    const expected: Array<Awaited<ReturnType<typeof sequential>>> = [];
    for (const image of cells) expected.push(await sequential(image, onnx));
    const alone = [];
    for (const image of cells) alone.push(await analysed(image));
    // Several cells at once: their resizes, encodes and forward passes interleave on the pool.
    const together = await Promise.all(cells.map(analysed));
    for (const results of [alone, together]) {
      results.forEach((analysis, k) => {
        const want = expected[k];
        expect(analysis.runtime).toBe('onnxruntime');
        expect(analysis.networkProbability).toBe(want.networkProbability);
        expect(analysis.probabilityAll).toBe(want.probabilityAll);
        expect(analysis.morphology).toStrictEqual(want.morphology);
        expect(analysis.outOfDomainScore).toBe(want.outOfDomainScore);
        expect(analysis.reviewReasons).toStrictEqual(want.reviewReasons);
        expect(analysis.heatmapPng!.equals(want.heatmapPng!)).toBe(true);
      });
    }
    // The grey background is masked for the network but measured as given, and says so.
    expect(alone[alone.length - 1].reviewReasons).toContain('OUT_OF_DOMAIN');
  }, 120_000);

  it('gives a cell the same probability, to the last bit, with and without its heat map', async () => {
    if (!onnx) return;
    // The views other than the cell as given run on the graph without Grad-CAM (session.ts), whose
    // probabilities can differ from the full graph's in their last bits: the cell as given must take the
    // same graph either way, or asking for a heat map could move a call at the threshold.
    for (const image of cells) {
      const withMap = await analysed(image);
      const without = await analyzeCell(builtNetwork(model), rule, image, { explain: false, onnx });
      expect(without.runtime).toBe('onnxruntime');
      expect(without.heatmapPng).toBeNull();
      expect(without.networkProbability).toBe(withMap.networkProbability);
      expect(without.probabilityAll).toBe(withMap.probabilityAll);
      expect(without.reviewReasons).toEqual(withMap.reviewReasons);
    }
  }, 120_000);

  it('gives the same analysis with TF.js alone, and leaks no tensors', async () => {
    const image = cells[1];
    const before = liveTensors();
    const first = await analyzeCell(builtNetwork(model), rule, image, { explain: true });
    const [again] = await Promise.all([
      analyzeCell(builtNetwork(model), rule, image, { explain: true }),
      analyzeCell(builtNetwork(model), rule, cells[2], { explain: true }),
    ]);
    expect(first.runtime).toBe('tfjs');
    expect({ ...again, timings: null }).toStrictEqual({ ...first, timings: null });
    expect(first.morphology).toStrictEqual(measureMorphology(image));
    expect(first.heatmapPng).not.toBeNull();
    expect(liveTensors()).toBe(before);
  }, 120_000);
});
