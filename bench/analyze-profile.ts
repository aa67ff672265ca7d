/**
 * `npx tsx bench/analyze-profile.ts [passes]`: analyzeCell over the 63 real C-NMC cells of
 * data/cnmc-sample with the demo model on onnxruntime, for `node --cpu-prof` and quick per-stage p50s.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeImage } from '../src/ml/image/decode';
import { loadModel } from '../src/ml/models/model-io';
import { exportOnnx } from '../src/ml/onnx/export';
import { OnnxClassifier } from '../src/ml/onnx/session';
import { analyzeCell, type DecisionRule } from '../src/ml/serving/predictor';
import { initRuntime } from '../src/ml/runtime';
import { configureMl } from '../src/ml/settings';
import { loadMlSettings } from '../src/config';
import { sampleImages } from '../test/helpers/sample';
import { benchEndToEnd } from './end-to-end';
import { percentile, round } from './stats';
import { builtNetwork } from '../src/ml/serving/tfjs-network';

async function main() {
  const passes = Number(process.argv[2] ?? 3);
  configureMl(loadMlSettings());
  await initRuntime();
  const dir = path.join(__dirname, '..', 'data', 'demo-model');
  const model = await loadModel({
    modelJson: JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')),
    weights: readFileSync(path.join(dir, 'weights.bin')),
  });
  const rule = JSON.parse(readFileSync(path.join(dir, 'card.json'), 'utf8')) as DecisionRule;
  const onnx = await OnnxClassifier.create(exportOnnx(model).bytes, rule.inputSize);
  const network = builtNetwork(model);
  const samples = sampleImages();
  const stages: Record<string, number[]> = {};
  const push = (k: string, v: number) => (stages[k] ??= []).push(v);
  await analyzeCell(network, rule, await decodeImage(samples[0].bytes), { explain: true, onnx });
  const cpu = process.cpuUsage();
  const wall = performance.now();
  for (let pass = 0; pass < passes; pass++) {
    for (const s of samples) {
      const start = performance.now();
      const image = await decodeImage(s.bytes);
      push('decode', performance.now() - start);
      const a = await analyzeCell(network, rule, image, { explain: true, onnx });
      for (const [k, v] of Object.entries(a.timings)) push(k, v);
      push('total', performance.now() - start);
    }
  }
  const used = process.cpuUsage(cpu);
  const cells = passes * samples.length;
  // On a shared machine wall-clock stages stretch with the load; CPU time per cell (every thread of
  // this process: onnxruntime's and libvips' included) does much less.
  console.log(
    `CPU ms per cell ${round((used.user + used.system) / 1000 / cells)}, wall ms per cell ${round((performance.now() - wall) / cells)}`,
  );
  console.log(
    `${samples.length} real C-NMC cells x ${passes}, demo model, outOfDomain ${rule.outOfDomain ? 'on' : 'off'}, tta ${rule.testTimeAugmentation}`,
  );
  for (const [k, v] of Object.entries(stages)) console.log(k.padEnd(14), round(percentile(v, 50)));
  await onnx.dispose();
  if (process.argv.includes('--e2e')) {
    const { rows, breakdown } = await benchEndToEnd(
      samples.map((s) => s.bytes),
      1,
    );
    console.table(rows);
    console.table(breakdown);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
