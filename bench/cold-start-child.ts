/**
 * The process bench/cold-start.ts spawns, bundled by esbuild as a Lambda bundle is: import, initialise
 * the ML runtime, load the demo model (TF.js, plus onnxruntime when asked), decode one real cell and
 * answer with its probability and heat map. Prints one JSON line of milestones (ms since process start).
 *
 *   node cold-start.js <onnxruntime|tfjs> <demo-model dir> <model.onnx> <cell.bmp>
 */
async function main() {
  const [mode, modelDir, onnxPath, imagePath] = process.argv.slice(2);
  const marks: Record<string, number> = { main: performance.now() };
  const { readFile } = await import('node:fs/promises');
  const path = await import('node:path');
  const { initRuntime } = await import('../src/ml/runtime');
  const { loadModel } = await import('../src/ml/models/model-io');
  const { decodeImage } = await import('../src/ml/image/decode');
  const { analyzeCell } = await import('../src/ml/serving/predictor');
  const { builtNetwork } = await import('../src/ml/serving/tfjs-network');
  const { OnnxClassifier } = await import('../src/ml/onnx/session');
  marks.imported = performance.now();
  await initRuntime();
  marks.runtimeReady = performance.now();
  const [modelJson, weights, cardJson] = await Promise.all([
    readFile(path.join(modelDir, 'model.json'), 'utf8'),
    readFile(path.join(modelDir, 'weights.bin')),
    readFile(path.join(modelDir, 'card.json'), 'utf8'),
  ]);
  const card = JSON.parse(cardJson);
  const model = await loadModel({ modelJson: JSON.parse(modelJson), weights });
  const onnx =
    mode === 'onnxruntime' ? await OnnxClassifier.create(await readFile(onnxPath), card.inputSize) : null;
  marks.modelLoaded = performance.now();
  const image = await decodeImage(await readFile(imagePath));
  const analysis = await analyzeCell(builtNetwork(model), card, image, { explain: true, onnx });
  marks.firstAnswer = performance.now();
  console.log(
    JSON.stringify({
      marks,
      runtime: analysis.runtime,
      probabilityAll: analysis.probabilityAll,
      heatmapBytes: analysis.heatmapPng?.length ?? 0,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
