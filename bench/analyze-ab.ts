/**
 * `npx tsx bench/analyze-ab.ts REV [passes]`: the analysis of one cell (decode, then analyzeCell with
 * a heat map) by this tree's src/ and by src/ of git revision REV, interleaved cell by cell, so that
 * load from other processes on a shared machine falls on both alike. Data: the 63 real C-NMC cells of
 * data/cnmc-sample, the demo model on onnxruntime (each side in its own tree's OnnxClassifier). Prints p50/p90 wall, CPU ms per cell (every thread
 * of the process), each side's stage p50s, the ratios, and how many analyses differ (they should not).
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../src/ml/image/decode';
import { loadModel } from '../src/ml/models/model-io';
import { exportOnnx } from '../src/ml/onnx/export';
import { OnnxClassifier } from '../src/ml/onnx/session';
import * as current from '../src/ml/serving/predictor';
import { initRuntime } from '../src/ml/runtime';
import { builtNetwork, type TfjsNetwork } from '../src/ml/serving/tfjs-network';
import { sampleImages } from '../test/helpers/sample';
import { checkout, networkArgument } from './revision';
import { percentile, round } from './stats';

type Analyze = typeof current.analyzeCell;

async function main() {
  const rev = process.argv[2];
  if (!rev) throw new Error('usage: npx tsx bench/analyze-ab.ts REV [passes]');
  const passes = Number(process.argv[3] ?? 2);
  const baseRoot = checkout(rev);
  const base = (await import(path.join(baseRoot, 'src', 'ml', 'serving', 'predictor')))
    .analyzeCell as Analyze;
  await initRuntime();
  const dir = path.join(__dirname, '..', 'data', 'demo-model');
  const model = await loadModel({
    modelJson: JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')),
    weights: readFileSync(path.join(dir, 'weights.bin')),
  });
  const rule = JSON.parse(readFileSync(path.join(dir, 'card.json'), 'utf8')) as current.DecisionRule;
  // Each side opens the model with its own tree's OnnxClassifier, so a change to the sessions is measured.
  const bytes = exportOnnx(model).bytes;
  const BaseClassifier = (await import(path.join(baseRoot, 'src', 'ml', 'onnx', 'session')))
    .OnnxClassifier as typeof OnnxClassifier;
  const sessions = [
    await BaseClassifier.create(bytes, rule.inputSize),
    await OnnxClassifier.create(bytes, rule.inputSize),
  ];
  const samples = sampleImages();
  const sides: Array<[string, Analyze, TfjsNetwork, OnnxClassifier]> = [
    [rev, base, (await networkArgument(baseRoot, model)) as TfjsNetwork, sessions[0]],
    ['this tree', current.analyzeCell, builtNetwork(model), sessions[1]],
  ];
  const wall = sides.map(() => [] as number[]);
  const cpu = sides.map(() => 0);
  const stages = sides.map(() => ({}) as Record<string, number[]>);
  // One untimed pass each: first-call costs belong to cold start.
  for (const [, analyze, network, onnx] of sides)
    await analyze(network, rule, await decodeImage(samples[0].bytes), { explain: true, onnx });
  const load = loadavg()[0];
  let differing = 0;
  let pixelsDiffer = 0;
  // Beyond bit-identity: calls or review reasons that differ, and the largest probability difference.
  let decisionsDiffer = 0;
  let largestProbabilityDiff = 0;
  for (let pass = 0; pass < passes; pass++) {
    for (const sample of samples) {
      const results: string[] = [];
      const analyses: Array<Awaited<ReturnType<Analyze>>> = [];
      for (const [s, [, analyze, network, onnx]] of sides.entries()) {
        const used = process.cpuUsage();
        const start = performance.now();
        const image = await decodeImage(sample.bytes);
        const analysis = await analyze(network, rule, image, { explain: true, onnx });
        wall[s].push(performance.now() - start);
        const { user, system } = process.cpuUsage(used);
        cpu[s] += (user + system) / 1000;
        for (const [k, v] of Object.entries(analysis.timings)) (stages[s][k] ??= []).push(v);
        analyses.push(analysis);
        results.push(JSON.stringify({ ...analysis, timings: null, heatmapPng: null }));
      }
      const [a, b] = analyses;
      // The heat maps compared by their pixels (decoded outside the timed part): an encoder may change the
      // bytes of a PNG and not one of its pixels.
      const pixels = await Promise.all(
        analyses.map((x) => (x.heatmapPng ? sharp(x.heatmapPng).raw().toBuffer() : null)),
      );
      const samePixels = pixels[0] === null ? pixels[1] === null : !!pixels[1]?.equals(pixels[0]);
      if (!samePixels) pixelsDiffer++;
      if (results[0] !== results[1] || !samePixels) differing++;
      if (a.isAll !== b.isAll || a.reviewReasons.join() !== b.reviewReasons.join()) decisionsDiffer++;
      largestProbabilityDiff = Math.max(
        largestProbabilityDiff,
        Math.abs(a.probabilityAll - b.probabilityAll),
      );
    }
  }
  for (const session of sessions) await session.dispose();
  const cells = passes * samples.length;
  console.log(
    `${samples.length} real C-NMC cells x ${passes}, demo model on onnxruntime, heat map on; load average ${round(load)} at the start, ${round(loadavg()[0])} at the end; analyses that differ: ${differing}, in their heat map's pixels: ${pixelsDiffer}, in their call or review reasons: ${decisionsDiffer}; largest probability difference ${largestProbabilityDiff.toExponential(2)}`,
  );
  const rows = sides.map(([name], s) => ({
    src: name,
    'p50 ms': round(percentile(wall[s], 50)),
    'p90 ms': round(percentile(wall[s], 90)),
    'CPU ms/cell': round(cpu[s] / cells),
    ...Object.fromEntries(Object.entries(stages[s]).map(([k, v]) => [k, round(percentile(v, 50))])),
  }));
  console.table(rows);
  console.log(
    `this tree / ${rev}: p50 ${round(rows[1]['p50 ms'] / rows[0]['p50 ms'])}, CPU ${round(cpu[1] / cpu[0])}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
