/**
 * An exported model cut down to the nodes some of its outputs need, read and written at the protobuf wire
 * level.
 *
 * Why: onnxruntime runs every node of a session's graph on every run, whatever outputs the run asks for. A
 * served model.onnx computes Grad-CAM beside the probability (export.ts), so scoring the 7 other views of a
 * cell paid for 7 Grad-CAMs nobody reads: the max pool with indices, the ReLU and pool gradients, the
 * upsampling (about a third of the 7-view run on the demo model, docs/PERFORMANCE.md). Serving opens a
 * second session on the graph without them.
 *
 * Why not onnx-proto (which the exporter uses): the API never loads it, and decoding every initializer
 * into objects to drop a few nodes would add its 15 ms of module loading to a cold start. Only the
 * graph's own fields are looked into; every kept field is copied byte for byte.
 */

/** Field numbers of onnx.proto (ONNX 1.12) that pruning reads. */
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_OUTPUT = 12;
const GRAPH_VALUE_INFO = 13;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const TENSOR_NAME = 8;
const VALUE_INFO_NAME = 1;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;

interface Field {
  field: number;
  /** The whole field, tag included, as it is in the message. */
  start: number;
  end: number;
  /** A length-delimited field's payload (start of it); -1 for other wire types. */
  payload: number;
}

function readVarint(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = at; i < bytes.length && i < at + 10; i++) {
    value += (bytes[i] & 0x7f) * scale;
    scale *= 128;
    if ((bytes[i] & 0x80) === 0) return { value, next: i + 1 };
  }
  throw new Error('malformed ONNX model: a varint runs past its message.');
}

/** The top-level fields of one message. */
function fieldsOf(bytes: Uint8Array, start = 0, end = bytes.length): Field[] {
  const fields: Field[] = [];
  let at = start;
  while (at < end) {
    const tag = readVarint(bytes, at);
    const field = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    let next: number;
    let payload = -1;
    if (wire === WIRE_VARINT) next = readVarint(bytes, tag.next).next;
    else if (wire === WIRE_FIXED64) next = tag.next + 8;
    else if (wire === WIRE_FIXED32) next = tag.next + 4;
    else if (wire === WIRE_LENGTH) {
      const length = readVarint(bytes, tag.next);
      payload = length.next;
      next = length.next + length.value;
    } else throw new Error(`malformed ONNX model: wire type ${wire}.`);
    if (next > end) throw new Error('malformed ONNX model: a field runs past its message.');
    fields.push({ field, start: at, end: next, payload });
    at = next;
  }
  return fields;
}

const utf8 = new TextDecoder();

/** The strings of a message's length-delimited field `field`, in order. */
function stringsOf(bytes: Uint8Array, message: Field, field: number): string[] {
  return fieldsOf(bytes, message.payload, message.end)
    .filter((f) => f.field === field && f.payload >= 0)
    .map((f) => utf8.decode(bytes.subarray(f.payload, f.end)));
}

function varint(value: number): number[] {
  const out: number[] = [];
  do {
    const low = value % 128;
    value = Math.floor(value / 128);
    out.push(value > 0 ? low | 0x80 : low);
  } while (value > 0);
  return out;
}

/**
 * The model with only `outputs` as graph outputs and only the nodes, initializers and value infos they
 * need. Graph inputs are kept as they are. Throws when an output is not one of the graph's.
 */
export function pruneOnnxOutputs(model: Uint8Array, outputs: string[]): Uint8Array {
  const top = fieldsOf(model);
  const graphs = top.filter((f) => f.field === MODEL_GRAPH && f.payload >= 0);
  if (graphs.length !== 1) throw new Error('malformed ONNX model: expected one graph.');
  const graph = graphs[0];
  const fields = fieldsOf(model, graph.payload, graph.end);
  const declared = new Set(
    fields.filter((f) => f.field === GRAPH_OUTPUT).flatMap((f) => stringsOf(model, f, VALUE_INFO_NAME)),
  );
  const missing = outputs.filter((name) => !declared.has(name));
  if (missing.length > 0) throw new Error(`The ONNX model has no output ${missing.join(', ')}.`);

  // Nodes are in topological order (ONNX requires it): walking back from the outputs finds every node
  // whose result reaches one of them.
  const needed = new Set(outputs);
  const keptNodes = new Set<Field>();
  const nodes = fields.filter((f) => f.field === GRAPH_NODE);
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (!stringsOf(model, nodes[i], NODE_OUTPUT).some((name) => needed.has(name))) continue;
    keptNodes.add(nodes[i]);
    for (const name of stringsOf(model, nodes[i], NODE_INPUT)) if (name !== '') needed.add(name);
  }
  const keep = (f: Field): boolean => {
    switch (f.field) {
      case GRAPH_NODE:
        return keptNodes.has(f);
      case GRAPH_INITIALIZER:
        return stringsOf(model, f, TENSOR_NAME).some((name) => needed.has(name));
      case GRAPH_OUTPUT:
        return stringsOf(model, f, VALUE_INFO_NAME).some((name) => outputs.includes(name));
      case GRAPH_VALUE_INFO:
        return stringsOf(model, f, VALUE_INFO_NAME).some((name) => needed.has(name));
      default:
        return true;
    }
  };
  const graphParts = fields
    .filter(keep)
    .map((f) =>
      f.field === GRAPH_NODE ? withoutUnusedOutputs(model, f, needed) : model.subarray(f.start, f.end),
    );
  const graphLength = graphParts.reduce((sum, part) => sum + part.length, 0);
  const parts: Uint8Array[] = [];
  for (const f of top) {
    if (f !== graph) parts.push(model.subarray(f.start, f.end));
    else
      parts.push(
        Uint8Array.from([...varint(MODEL_GRAPH * 8 + WIRE_LENGTH), ...varint(graphLength)]),
        ...graphParts,
      );
  }
  return concat(parts);
}

/**
 * A kept node without the outputs nothing needs: trailing ones dropped, others named '' (ONNX's "absent
 * optional output"). A MaxPool whose indices only Grad-CAM read then runs as the plain, much faster pool.
 */
function withoutUnusedOutputs(model: Uint8Array, node: Field, needed: Set<string>): Uint8Array {
  const names = stringsOf(model, node, NODE_OUTPUT);
  if (names.every((name) => needed.has(name))) return model.subarray(node.start, node.end);
  let last = names.length - 1;
  while (last > 0 && !needed.has(names[last])) last--;
  const encoder = new TextEncoder();
  const parts: Uint8Array[] = [];
  let output = 0;
  for (const f of fieldsOf(model, node.payload, node.end)) {
    if (f.field !== NODE_OUTPUT) {
      parts.push(model.subarray(f.start, f.end));
      continue;
    }
    const name = names[output];
    output++;
    if (output - 1 > last) continue;
    const kept = encoder.encode(needed.has(name) ? name : '');
    parts.push(Uint8Array.from([...varint(NODE_OUTPUT * 8 + WIRE_LENGTH), ...varint(kept.length)]), kept);
  }
  const body = concat(parts);
  return concat([Uint8Array.from([...varint(GRAPH_NODE * 8 + WIRE_LENGTH), ...varint(body.length)]), body]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
