import type { GraphBuilder } from '../../onnx/graph';
import { type TrainedLayer, UnsupportedLayerError, type Value } from './types';

/**
 * TF.js activations by their config name: the forward nodes, and the derivative from the activation's
 * output y where we have written it. An activation without `backward` exports but neither trains in
 * onnxruntime nor passes Grad-CAM back.
 */
interface ActivationOps {
  forward(b: GraphBuilder, x: Value, hint: string): Value;
  /** g * d activation / d pre, from the output y. */
  backward?(b: GraphBuilder, g: string, y: string, hint: string): string;
}

const unary =
  (op: string, attributes = {}) =>
  (b: GraphBuilder, x: Value, hint: string): Value => ({
    ...x,
    name: b.op(op, [x.name], `${hint}_${op.toLowerCase()}`, attributes),
  });

/** x clipped to [min, max] (ReLU with a maximum, relu6). */
export function clip(b: GraphBuilder, x: Value, min: number, max: number, hint: string): Value {
  const bounds = [b.floats(`${hint}/min`, [], [min]), b.floats(`${hint}/max`, [], [max])];
  return { ...x, name: b.op('Clip', [x.name, ...bounds], hint) };
}

const ACTIVATIONS: Record<string, ActivationOps> = {
  linear: { forward: (_b, x) => x, backward: (_b, g) => g },
  relu: {
    forward: unary('Relu'),
    backward: (b, g, y, hint) =>
      b.op(
        'Where',
        [
          b.op('Greater', [y, b.floats(`${hint}/zero`, [], [0])], `${hint}_active`),
          g,
          b.floats(`${hint}/zero_g`, [], [0]),
        ],
        `${hint}_d_relu`,
      ),
  },
  sigmoid: {
    forward: unary('Sigmoid'),
    backward: (b, g, y, hint) => {
      const slope = b.op(
        'Mul',
        [y, b.op('Sub', [b.floats(`${hint}/one`, [], [1]), y], `${hint}_1my`)],
        `${hint}_slope`,
      );
      return b.op('Mul', [g, slope], `${hint}_d_sigmoid`);
    },
  },
  tanh: {
    forward: unary('Tanh'),
    backward: (b, g, y, hint) => {
      const slope = b.op(
        'Sub',
        [b.floats(`${hint}/one`, [], [1]), b.op('Mul', [y, y], `${hint}_y2`)],
        `${hint}_slope`,
      );
      return b.op('Mul', [g, slope], `${hint}_d_tanh`);
    },
  },
  softplus: { forward: unary('Softplus') },
  softsign: { forward: unary('Softsign') },
  selu: { forward: unary('Selu') },
  elu: { forward: unary('Elu', { alpha: { float: 1 } }) },
  relu6: { forward: (b, x, hint) => clip(b, x, 0, 6, `${hint}_relu6`) },
  hardSigmoid: { forward: unary('HardSigmoid', { alpha: { float: 0.2 }, beta: { float: 0.5 } }) },
  softmax: {
    forward: (b, x, hint) => {
      if (x.layout !== 'NC') throw new UnsupportedLayerError(`softmax on feature maps in '${hint}'.`);
      return unary('Softmax', { axis: -1 })(b, x, hint);
    },
  },
  swish: {
    forward: (b, x, hint) => ({
      ...x,
      name: b.op('Mul', [x.name, b.op('Sigmoid', [x.name], `${hint}_swish_gate`)], `${hint}_swish`),
    }),
  },
};

/** The activation `name` applied to x; 'linear' returns `x` itself. */
export function activation(b: GraphBuilder, x: Value, name: string, hint: string): Value {
  const ops = Object.hasOwn(ACTIVATIONS, name) ? ACTIVATIONS[name] : undefined;
  if (!ops) throw new UnsupportedLayerError(`Activation '${name}' in '${hint}' cannot be exported to ONNX.`);
  return ops.forward(b, x, hint);
}

/** g times the derivative of the activation `name`, from its output y. */
export function activationBackward(
  b: GraphBuilder,
  g: string,
  y: string,
  name: string,
  hint: string,
): string {
  const backward = Object.hasOwn(ACTIVATIONS, name) ? ACTIVATIONS[name].backward : undefined;
  if (!backward) {
    throw new UnsupportedLayerError(
      `Activation '${name}' in '${hint}' has no ONNX gradient; cannot pass back.`,
    );
  }
  return backward(b, g, y, hint);
}

/**
 * A Conv2D's or Dense's fused activation at inference: its output, with the pre-activation kept for
 * Grad-CAM when there is an activation.
 */
export function fusedActivation(b: GraphBuilder, pre: Value, config: Record<string, unknown>, hint: string) {
  const output = activation(b, pre, String(config.activation ?? 'linear'), hint);
  return output === pre ? { output } : { output, preActivation: pre };
}

/**
 * A Conv2D's or Dense's fused activation in training: its forward nodes, and a backward that hands
 * `backwardFromPre` the gradient with respect to the pre-activation.
 */
export function trainFusedActivation(
  b: GraphBuilder,
  pre: Value,
  config: Record<string, unknown>,
  hint: string,
  backwardFromPre: (gPre: string, first: boolean) => string,
): TrainedLayer {
  const act = String(config.activation ?? 'linear');
  const output = activation(b, pre, act, hint);
  return {
    output,
    activation: act,
    backward: (g, first) => backwardFromPre(activationBackward(b, g, output.name, act, hint), first),
  };
}
