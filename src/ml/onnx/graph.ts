import { onnx } from 'onnx-proto';

/**
 * A small builder over onnx-proto's generated types: unique tensor names, float32/int64 initializers and
 * typed attributes. Opset 17 is the oldest that has everything the exporter emits (ScatterElements with
 * reduction 'add', from 16); onnxruntime-node 1.30 runs it.
 */
export const OPSET = 17;
/** The IR version of opset 17 (ONNX 1.12); onnx-proto 8 encodes it. */
const IR_VERSION = 8;

export type AttributeValue = number | number[] | string | { float: number } | { floats: number[] };

type Dim = number | string;

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly used = new Set<string>();

  /** A tensor name not used before in this graph, derived from `hint`. */
  name(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_./:-]/g, '_');
    let candidate = base;
    for (let i = 1; this.used.has(candidate); i++) candidate = `${base}_${i}`;
    this.used.add(candidate);
    return candidate;
  }

  input(name: string, dims: Dim[]): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, dims));
    return name;
  }

  /** Keeps `name` for a graph output that will be written later with output(). */
  reserve(name: string): void {
    if (this.used.has(name)) throw new Error(`Tensor name '${name}' is taken.`);
    this.used.add(name);
  }

  /** Declares `value` a graph output under the reserved name `name`. */
  output(value: string, name: string, dims: Dim[]): void {
    this.nodes.push({ opType: 'Identity', name, input: [value], output: [name] });
    this.outputs.push(valueInfo(name, dims));
  }

  floats(hint: string, dims: number[], values: ArrayLike<number>): string {
    const size = dims.reduce((n, d) => n * d, 1);
    if (values.length !== size)
      throw new Error(`Initializer ${hint}: ${values.length} values for [${dims}].`);
    const name = this.name(hint);
    const data = Float32Array.from(values);
    this.initializers.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  int64s(hint: string, values: number[]): string {
    const name = this.name(hint);
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({
      name,
      dims: [values.length],
      dataType: onnx.TensorProto.DataType.INT64,
      rawData: new Uint8Array(data.buffer),
    });
    return name;
  }

  /** Adds a node; returns its output names (fresh ones derived from `hint`). */
  node(
    opType: string,
    inputs: string[],
    hint: string,
    attributes: Record<string, AttributeValue> = {},
    outputCount = 1,
  ): string[] {
    const outputs = Array.from({ length: outputCount }, (_, i) =>
      this.name(outputCount === 1 ? hint : `${hint}_${i}`),
    );
    this.nodes.push({
      opType,
      name: outputs[0],
      input: inputs,
      output: outputs,
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return outputs;
  }

  /** One-output node. */
  op(opType: string, inputs: string[], hint: string, attributes: Record<string, AttributeValue> = {}) {
    return this.node(opType, inputs, hint, attributes)[0];
  }

  encode(graphName: string, docString: string): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'lymphoscope',
      docString,
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): onnx.IAttributeProto {
  const type = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`Attribute ${name}: use { float } for ${value}.`);
    return { name, type: type.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: type.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: type.INTS, ints: value };
  if ('float' in value) return { name, type: type.FLOAT, f: value.float };
  return { name, type: type.FLOATS, floats: value.floats };
}
