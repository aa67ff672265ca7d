import { readFileSync } from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { decodeImage } from '../../../src/ml/image/decode';
import { toModelInput } from '../../../src/ml/image/preprocess';
import { loadModel } from '../../../src/ml/models/model-io';
import { exportOnnx, OnnxClassifier } from '../../../src/ml/onnx';
import { ONNX_GRAD_CAM, ONNX_PROBABILITY } from '../../../src/ml/onnx/names';
import { pruneOnnxOutputs } from '../../../src/ml/onnx/prune';
import { initRuntime } from '../../../src/ml/runtime';
import { sampleImages } from '../../helpers/sample';

/**
 * The served model.onnx computes Grad-CAM beside the probability; serving scores the other views on the
 * same graph cut down to the probability (prune.ts). Checked on the bundled demo model (a real trained
 * lymphonet) and the 63 real C-NMC cells: the cut graph is the graph the exporter writes without Grad-CAM,
 * node for node, and its probabilities are the full graph's.
 */
const DEMO_DIR = path.join(__dirname, '..', '..', '..', 'data', 'demo-model');

let full: Uint8Array;
let withoutCam: Uint8Array;

beforeAll(async () => {
  await initRuntime();
  const model = await loadModel({
    modelJson: JSON.parse(readFileSync(path.join(DEMO_DIR, 'model.json'), 'utf8')),
    weights: readFileSync(path.join(DEMO_DIR, 'weights.bin')),
  });
  try {
    full = exportOnnx(model).bytes;
    // A layer name the model does not have: the exporter writes the classifier alone.
    withoutCam = exportOnnx(model, { gradCamLayer: 'no such layer' }).bytes;
  } finally {
    model.dispose();
  }
});

const graphOf = (bytes: Uint8Array) => onnx.ModelProto.decode(bytes).graph!;
const opsOf = (bytes: Uint8Array) =>
  graphOf(bytes).node!.map((n) => `${n.opType}:${n.input!.length}->${n.output!.filter((o) => o).length}`);

describe('pruneOnnxOutputs', () => {
  it('leaves the graph the exporter writes without Grad-CAM, with every other model field kept', () => {
    const pruned = pruneOnnxOutputs(full, [ONNX_PROBABILITY]);
    expect(graphOf(full).output!.map((o) => o.name)).toEqual([ONNX_PROBABILITY, ONNX_GRAD_CAM]);
    expect(graphOf(pruned).output!.map((o) => o.name)).toEqual([ONNX_PROBABILITY]);
    expect(opsOf(full).length).toBeGreaterThan(opsOf(pruned).length + 10);
    // The same nodes in the same order; the max pool Grad-CAM read indices from has lost that output.
    expect(opsOf(pruned)).toEqual(opsOf(withoutCam));
    expect(opsOf(full)).toContain('MaxPool:1->2');
    expect(opsOf(pruned)).not.toContain('MaxPool:1->2');
    expect(
      graphOf(pruned)
        .initializer!.map((t) => t.name)
        .sort(),
    ).toEqual(
      graphOf(withoutCam)
        .initializer!.map((t) => t.name)
        .sort(),
    );
    const { graph: _a, ...fullModel } = onnx.ModelProto.toObject(onnx.ModelProto.decode(full));
    const { graph: _b, ...prunedModel } = onnx.ModelProto.toObject(onnx.ModelProto.decode(pruned));
    expect(prunedModel).toEqual(fullModel);
    // Asking for every output changes nothing.
    expect(Buffer.from(pruneOnnxOutputs(full, [ONNX_PROBABILITY, ONNX_GRAD_CAM]))).toEqual(Buffer.from(full));
  });

  it('refuses an output the graph does not have, and bytes that are not a model', () => {
    expect(() => pruneOnnxOutputs(full, ['logits'])).toThrow(/no output logits/);
    expect(() => pruneOnnxOutputs(full.subarray(0, full.length - 100), [ONNX_PROBABILITY])).toThrow(
      /malformed ONNX model/,
    );
    expect(() => pruneOnnxOutputs(new Uint8Array([0x3a, 0x05, 0x01]), [ONNX_PROBABILITY])).toThrow(
      /malformed ONNX model/,
    );
  });

  it('OnnxClassifier scores views on the cut graph: the full graph probabilities on 63 real cells', async () => {
    const cells = await Promise.all(
      sampleImages().map(async (s) => toModelInput(await decodeImage(s.bytes), 96)),
    );
    const classifier = await OnnxClassifier.create(full, 96, { threads: 1 });
    try {
      const batch = new Float32Array(cells.length * cells[0].length);
      cells.forEach((c, i) => batch.set(c, i * c.length));
      const viaCut = await classifier.predict(batch, cells.length);
      let largest = 0;
      for (const [i, cell] of cells.entries()) {
        // explain() runs the full graph, Grad-CAM and all.
        const { probabilityAll } = await classifier.explain(cell);
        largest = Math.max(largest, Math.abs(probabilityAll - viaCut[i]));
      }
      expect(Math.max(...viaCut) - Math.min(...viaCut)).toBeGreaterThan(0.5);
      expect(largest).toBeLessThan(1e-6);
    } finally {
      await classifier.dispose();
    }
  });
});
