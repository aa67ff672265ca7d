import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { jsonLinesOfChild } from './child-json';
import { median, round } from './stats';

export interface ColdStartRow {
  runtime: string;
  runs: number;
  /** Spawn to the first answer on stdout, as a caller would wait (median). */
  spawnToAnswerMs: number;
  /** Milestones inside the process, ms since it started (median). */
  importedMs: number;
  runtimeReadyMs: number;
  modelLoadedMs: number;
  firstAnswerMs: number;
  maxRssMb: number;
}

const ROOT = path.join(__dirname, '..');
const OUT_DIR = path.join(ROOT, 'node_modules', '.cache', 'lymphoscope-bench');

/**
 * Cold start: a fresh Node process runs a bundle of bench/cold-start-child.ts (esbuild, externals as in
 * serverless.yml) up to its first prediction of a real cell with a heat map, with the demo model
 * (data/demo-model) served by onnxruntime or by TF.js.
 */
export async function benchColdStart(
  onnxBytes: Uint8Array,
  imagePath: string,
  runs: number,
): Promise<ColdStartRow[]> {
  await mkdir(OUT_DIR, { recursive: true });
  const bundle = path.join(OUT_DIR, 'cold-start.js');
  // Beside node_modules, so the externals resolve as they do in the Lambda zip.
  await build({
    entryPoints: [path.join(__dirname, 'cold-start-child.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: bundle,
    external: ['sharp', 'onnxruntime-node', '@tensorflow/tfjs-node'],
    logLevel: 'silent',
  });
  const onnxPath = path.join(OUT_DIR, 'demo-model.onnx');
  await writeFile(onnxPath, onnxBytes);
  const modelDir = path.join(ROOT, 'data', 'demo-model');

  const rows: ColdStartRow[] = [];
  const samples: Record<string, Array<{ spawnToAnswer: number; child: ChildReport }>> = {
    onnxruntime: [],
    tfjs: [],
  };
  for (let i = 0; i < runs; i++) {
    for (const mode of ['onnxruntime', 'tfjs']) {
      const started = performance.now();
      const child = await runChild(bundle, [mode, modelDir, onnxPath, imagePath]);
      samples[mode].push({ spawnToAnswer: performance.now() - started, child });
    }
  }
  for (const [mode, list] of Object.entries(samples)) {
    const pick = (f: (s: (typeof list)[number]) => number) => round(median(list.map(f)));
    rows.push({
      runtime:
        list[0].child.runtime === 'onnxruntime'
          ? 'onnxruntime'
          : mode === 'tfjs'
            ? 'tfjs'
            : 'tfjs (fallback)',
      runs: list.length,
      spawnToAnswerMs: pick((s) => s.spawnToAnswer),
      importedMs: pick((s) => s.child.marks.imported),
      runtimeReadyMs: pick((s) => s.child.marks.runtimeReady),
      modelLoadedMs: pick((s) => s.child.marks.modelLoaded),
      firstAnswerMs: pick((s) => s.child.marks.firstAnswer),
      maxRssMb: pick((s) => s.child.maxRssMb),
    });
  }
  return rows;
}

interface ChildReport {
  marks: Record<string, number>;
  runtime: string;
  maxRssMb: number;
}

async function runChild(bundle: string, args: string[]): Promise<ChildReport> {
  return (await jsonLinesOfChild('cold-start child', [bundle, ...args])).pop() as ChildReport;
}
