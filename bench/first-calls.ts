/**
 * `npx tsx bench/first-calls.ts [REV] [processes]`: the first analyses a fresh process makes, as a new
 * Lambda container does: decode + analyzeCell (heat map on, the demo model on onnxruntime) of 40 real
 * C-NMC cells of data/cnmc-sample in a fixed order, in `processes` fresh processes (default 3). Prints
 * the median over processes of the 1st, 2nd and 3rd analysis, of the first five together, and of the
 * steady state (the median of analyses 21 to 40), with the morphology stage beside them. With REV, src/
 * of that git revision is measured too, its processes alternating with this tree's, and the ratios are
 * printed. JavaScript runs unoptimised until V8 has seen it run, so these figures are the cold start's
 * share that the warm benchmarks (`npm run bench`) do not show.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { jsonLinesOfChild } from './child-json';
import { checkout, networkArgument } from './revision';
import { median, round } from './stats';

const ROOT = path.join(__dirname, '..');
const CELLS = 40;

interface ChildReport {
  wall: number[];
  morphology: number[];
}

/** In the child: every module from `root`'s src/, so that a revision is measured whole. */
async function child(root: string): Promise<void> {
  const from = (module: string) => import(path.join(root, 'src', 'ml', module));
  const { initRuntime } = await from('runtime');
  const { loadModel } = await from('models/model-io');
  const { decodeImage } = await from('image/decode');
  const { exportOnnx } = await from('onnx/export');
  const { OnnxClassifier } = await from('onnx/session');
  const { analyzeCell } = await from('serving/predictor');
  const { sampleImages } = await import('../test/helpers/sample');
  await initRuntime();
  const dir = path.join(ROOT, 'data', 'demo-model');
  const model = await loadModel({
    modelJson: JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')),
    weights: readFileSync(path.join(dir, 'weights.bin')),
  });
  const rule = JSON.parse(readFileSync(path.join(dir, 'card.json'), 'utf8'));
  const onnx = await OnnxClassifier.create(exportOnnx(model).bytes, rule.inputSize);
  const network = await networkArgument(root, model);
  const samples = sampleImages();
  const report: ChildReport = { wall: [], morphology: [] };
  for (let k = 0; k < CELLS; k++) {
    const started = performance.now();
    const image = await decodeImage(samples[(k * 7) % samples.length].bytes);
    const analysis = await analyzeCell(network, rule, image, { explain: true, onnx });
    report.wall.push(performance.now() - started);
    report.morphology.push(analysis.timings.morphologyMs);
  }
  await onnx.dispose();
  process.stdout.write(JSON.stringify(report) + '\n');
}

async function run(root: string): Promise<ChildReport> {
  const lines = await jsonLinesOfChild('first-calls child', [
    ...process.execArgv,
    __filename,
    '--child',
    root,
  ]);
  return lines.pop() as ChildReport;
}

function summary(reports: ChildReport[]) {
  const of = (pick: (r: ChildReport) => number) => round(median(reports.map(pick)));
  return {
    first: of((r) => r.wall[0]),
    second: of((r) => r.wall[1]),
    third: of((r) => r.wall[2]),
    firstFive: of((r) => r.wall.slice(0, 5).reduce((a, b) => a + b, 0)),
    steady: of((r) => median(r.wall.slice(20))),
    morphologyFirst: of((r) => r.morphology[0]),
    morphologySteady: of((r) => median(r.morphology.slice(20))),
  };
}

async function main(): Promise<void> {
  const [, , first, second] = process.argv;
  if (first === '--child') return child(second);
  const rev = first && !/^\d+$/.test(first) ? first : undefined;
  const processes = Number((rev ? second : first) ?? 3);
  const sides = [...(rev ? [{ name: rev, root: checkout(rev) }] : []), { name: 'this tree', root: ROOT }];
  const reports = sides.map(() => [] as ChildReport[]);
  for (let i = 0; i < processes; i++) {
    for (const [s, side] of sides.entries()) reports[s].push(await run(side.root));
  }
  const rows = sides.map((side, s) => ({ side: side.name, processes, ...summary(reports[s]) }));
  process.stdout.write(
    `First analyses of a fresh process (ms, median over ${processes} processes; data: ${CELLS} real C-NMC ` +
      `cells of data/cnmc-sample, the demo model on onnxruntime, heat map on):\n`,
  );
  console.table(rows);
  if (rows.length === 2) {
    const ratio = (k: keyof (typeof rows)[number]) => round(Number(rows[1][k]) / Number(rows[0][k]));
    process.stdout.write(
      `this tree / ${rev}: first ${ratio('first')}x, second ${ratio('second')}x, third ${ratio('third')}x, ` +
        `first five ${ratio('firstFive')}x, steady ${ratio('steady')}x\n`,
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
