import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { loadModel, serializeModel } from '../../ml/models/model-io';
import type { ModelCard, NewModelCard } from '../../services/models';

/** A model directory as `lymphoscope train` writes it: model.json, weights.bin and card.json. */
export async function writeModelDir(dir: string, model: tf.LayersModel, card: NewModelCard): Promise<void> {
  const bundle = await serializeModel(model);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(bundle.modelJson));
  await writeFile(path.join(dir, 'weights.bin'), bundle.weights);
  await writeFile(
    path.join(dir, 'card.json'),
    JSON.stringify({ version: 'local', createdAt: new Date().toISOString(), ...card }, null, 2) + '\n',
  );
}

export async function readModelDir(dir: string): Promise<{ model: tf.LayersModel; card: ModelCard }> {
  const [modelJson, weights, card] = await Promise.all([
    readFile(path.join(dir, 'model.json'), 'utf8'),
    readFile(path.join(dir, 'weights.bin')),
    readFile(path.join(dir, 'card.json'), 'utf8'),
  ]);
  return { model: await loadModel({ modelJson: JSON.parse(modelJson), weights }), card: JSON.parse(card) };
}
