import * as tf from '@tensorflow/tfjs';
import type { ModelBundle } from '../models/model-bundle';
import type { RngState } from '../rng';
import type { TrainingConfig } from './training-config';

export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number;
  valAccuracy: number;
  seconds: number;
}

export interface TrainingCheckpoint {
  /** Epochs completed. */
  epoch: number;
  model: ModelBundle;
  optimizerWeights: OptimizerState;
  best: { epoch: number; valLoss: number; model: ModelBundle };
  epochsWithoutImprovement: number;
  history: EpochRecord[];
  rngState: RngState;
  config: TrainingConfig;
}

/** Optimizer slots (moments, iteration count) as a tf.io weights manifest and its data. */
export interface OptimizerState {
  specs: tf.io.WeightsManifestEntry[];
  data: Buffer;
}

/**
 * Adam keeps beta1^t and beta2^t as running products, which its setWeights recomputes with pow(); the two
 * differ in the last float32 bit, and that bit, amplified through the following epochs, is enough to break
 * "resume == uninterrupted". So the products travel with the slots under these names.
 */
const ADAM_PRODUCTS = ['accBeta1', 'accBeta2'] as const;
const PRODUCT_PREFIX = 'lymphoscope/adam/';

type WithProducts = Partial<Record<(typeof ADAM_PRODUCTS)[number], tf.Variable>>;

export async function saveOptimizer(optimizer: tf.Optimizer): Promise<OptimizerState> {
  const weights = await optimizer.getWeights();
  const products = ADAM_PRODUCTS.flatMap((key) => {
    const product = (optimizer as unknown as WithProducts)[key];
    return product ? [{ name: PRODUCT_PREFIX + key, tensor: product as tf.Tensor }] : [];
  });
  try {
    const { data, specs } = await tf.io.encodeWeights([...weights, ...products]);
    return { specs, data: Buffer.from(data) };
  } finally {
    // getWeights hands out the live slot variables plus a fresh iteration-count scalar.
    for (const w of weights) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
  }
}

export async function restoreOptimizer(optimizer: tf.Optimizer, state: OptimizerState): Promise<void> {
  const byName = tf.io.decodeWeights(toArrayBuffer(state.data), state.specs);
  try {
    // Slots are matched to variables by position, so the manifest's order is kept.
    const slots = state.specs.filter((spec) => !spec.name.startsWith(PRODUCT_PREFIX));
    await optimizer.setWeights(slots.map((spec) => ({ name: spec.name, tensor: byName[spec.name] })));
    for (const key of ADAM_PRODUCTS) {
      const product = (optimizer as unknown as WithProducts)[key];
      const saved = byName[PRODUCT_PREFIX + key];
      if (product && saved) product.assign(saved);
    }
  } finally {
    tf.dispose(Object.values(byName));
  }
}

function toArrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

const MAGIC = 'LYCP';
const FORMAT_VERSION = 1;

/**
 * One self-describing object: 'LYCP', format version and header length (uint32 LE), a JSON header, then
 * the weight blobs it points at by [offset, length]. The best model is stored once when it is the
 * current one.
 */
export function serializeCheckpoint(cp: TrainingCheckpoint): Buffer {
  const blobs: Buffer[] = [];
  let offset = 0;
  const blob = (bytes: Buffer): [number, number] => {
    blobs.push(bytes);
    offset += bytes.byteLength;
    return [offset - bytes.byteLength, bytes.byteLength];
  };
  const header = {
    epoch: cp.epoch,
    config: cp.config,
    history: cp.history,
    rngState: cp.rngState,
    epochsWithoutImprovement: cp.epochsWithoutImprovement,
    model: { json: cp.model.modelJson, weights: blob(cp.model.weights) },
    best: {
      epoch: cp.best.epoch,
      valLoss: cp.best.valLoss,
      model:
        cp.best.model === cp.model
          ? 'current'
          : { json: cp.best.model.modelJson, weights: blob(cp.best.model.weights) },
    },
    optimizer: { specs: cp.optimizerWeights.specs, data: blob(cp.optimizerWeights.data) },
  };
  const json = Buffer.from(
    JSON.stringify(header, (_k, v) =>
      typeof v === 'number' && !Number.isFinite(v) ? { $number: String(v) } : v,
    ),
  );
  const prefix = Buffer.alloc(12);
  prefix.write(MAGIC, 0, 'ascii');
  prefix.writeUInt32LE(FORMAT_VERSION, 4);
  prefix.writeUInt32LE(json.byteLength, 8);
  return Buffer.concat([prefix, json, ...blobs]);
}

/** The inverse of serializeCheckpoint; the caller validates the config. */
export function decodeCheckpoint(buf: Buffer): TrainingCheckpoint {
  const corrupt = (why: string) => new Error(`Not a readable training checkpoint: ${why}.`);
  if (buf.byteLength < 12 || buf.toString('ascii', 0, 4) !== MAGIC) throw corrupt('bad magic');
  if (buf.readUInt32LE(4) !== FORMAT_VERSION) throw corrupt(`format version ${buf.readUInt32LE(4)}`);
  const headerEnd = 12 + buf.readUInt32LE(8);
  if (headerEnd > buf.byteLength) throw corrupt('truncated header');
  type Stored = { json: Record<string, unknown>; weights: [number, number] };
  const h = JSON.parse(buf.toString('utf8', 12, headerEnd), (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && '$number' in v
      ? Number(v.$number)
      : v,
  );
  const slice = ([at, length]: [number, number]) => {
    if (!(at >= 0 && length >= 0 && headerEnd + at + length <= buf.byteLength))
      throw corrupt('truncated weights');
    return buf.subarray(headerEnd + at, headerEnd + at + length);
  };
  const bundle = (stored: Stored): ModelBundle => ({
    modelJson: stored.json,
    weights: slice(stored.weights),
  });
  if (!h || !Number.isInteger(h.epoch) || !Array.isArray(h.history) || !h.model || !h.best || !h.optimizer) {
    throw corrupt('missing fields');
  }
  const model = bundle(h.model);
  return {
    epoch: h.epoch,
    config: h.config,
    history: h.history,
    rngState: h.rngState,
    epochsWithoutImprovement: h.epochsWithoutImprovement,
    model,
    best: {
      epoch: h.best.epoch,
      valLoss: h.best.valLoss,
      model: h.best.model === 'current' ? model : bundle(h.best.model),
    },
    optimizerWeights: { specs: h.optimizer.specs, data: slice(h.optimizer.data) },
  };
}
