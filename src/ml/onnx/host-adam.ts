import * as tf from '@tensorflow/tfjs';

/** tf.train.adam's state as tfjs-core's AdamOptimizer keeps it (fields it does not export). */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  iterations_: number | undefined;
}

const f32 = Math.fround;

/** Whether `optimizer` is tf.train.adam's (the only one HostAdam updates; the others stay in TF.js). */
export function isAdam(optimizer: tf.Optimizer): boolean {
  return optimizer.getClassName() === 'Adam';
}

/**
 * tf.train.adam's update on Float32Arrays, in place: the weights and both moments of every variable live
 * here between `load` and `store`, so a step neither copies weights out of TF.js nor gradients into it,
 * and runs one loop per variable instead of about ten wasm ops. Every operation is AdamOptimizer's, in
 * its order, each rounded to float32 as the TF.js kernels round it (float32 scalars: beta1, 1 - beta1,
 * 1 - accBeta1, epsilon, -learningRate), so the result matches tf.train.adam's to float32 rounding.
 */
export class HostAdam {
  private constructor(
    private readonly optimizer: tf.Optimizer,
    private readonly variables: tf.Variable[],
    /** The weights, in `variables` order: what the training graph is fed. */
    readonly weights: Float32Array[],
    private readonly m: Float32Array[],
    private readonly v: Float32Array[],
    private accBeta1: number,
    private accBeta2: number,
    private iterations: number,
  ) {}

  /** Copies the variables and the optimizer's slots (zeros before its first step) out of TF.js. */
  static load(optimizer: tf.Optimizer, variables: tf.Variable[]): HostAdam {
    const adam = optimizer as unknown as AdamInternals;
    const slot = (slots: AdamInternals['accumulatedFirstMoment'], i: number, size: number) => {
      const s = slots[i];
      return s ? (s.variable.dataSync() as Float32Array).slice() : new Float32Array(size);
    };
    return new HostAdam(
      optimizer,
      variables,
      variables.map((v) => (v.dataSync() as Float32Array).slice()),
      variables.map((v, i) => slot(adam.accumulatedFirstMoment, i, v.size)),
      variables.map((v, i) => slot(adam.accumulatedSecondMoment, i, v.size)),
      adam.accBeta1.dataSync()[0],
      adam.accBeta2.dataSync()[0],
      optimizer.iterations,
    );
  }

  /** Whether this state was loaded for `optimizer` and `variables`. */
  holds(optimizer: tf.Optimizer, variables: tf.Variable[]): boolean {
    return (
      this.optimizer === optimizer &&
      this.variables.length === variables.length &&
      this.variables.every((v, i) => v === variables[i])
    );
  }

  /** One Adam step with `gradients[i]` the gradient of `variables[i]`. */
  apply(gradients: Float32Array[]): void {
    const adam = this.optimizer as unknown as AdamInternals;
    const beta1 = f32(adam.beta1);
    const beta2 = f32(adam.beta2);
    const oneMinusBeta1 = f32(1 - adam.beta1);
    const oneMinusBeta2 = f32(1 - adam.beta2);
    const oneMinusAccBeta1 = f32(1 - this.accBeta1);
    const oneMinusAccBeta2 = f32(1 - this.accBeta2);
    const epsilon = f32(adam.epsilon);
    const negativeRate = f32(-adam.learningRate);
    for (let k = 0; k < this.weights.length; k++) {
      const w = this.weights[k];
      const m = this.m[k];
      const v = this.v[k];
      const g = gradients[k];
      if (g.length !== w.length)
        throw new Error(`Gradient ${k} has ${g.length} values; expected ${w.length}.`);
      for (let j = 0; j < w.length; j++) {
        const gj = g[j];
        const mj = f32(f32(m[j] * beta1) + f32(gj * oneMinusBeta1));
        const vj = f32(f32(v[j] * beta2) + f32(f32(gj * gj) * oneMinusBeta2));
        m[j] = mj;
        v[j] = vj;
        const mHat = f32(mj / oneMinusAccBeta1);
        const vHat = f32(vj / oneMinusAccBeta2);
        w[j] = f32(f32(f32(mHat / f32(f32(Math.sqrt(vHat)) + epsilon)) * negativeRate) + w[j]);
      }
    }
    this.accBeta1 = f32(this.accBeta1 * beta1);
    this.accBeta2 = f32(this.accBeta2 * beta2);
    this.iterations += 1;
  }

  /**
   * Writes the weights, the moments, the beta powers and the iteration count back into TF.js, where
   * validation, serializeModel and saveOptimizer read them, creating the slots as applyGradients would.
   */
  store(): void {
    const adam = this.optimizer as unknown as AdamInternals;
    this.variables.forEach((variable, i) => {
      tf.tidy(() => variable.assign(tf.tensor(this.weights[i], variable.shape, 'float32')));
      for (const [slots, values, suffix] of [
        [adam.accumulatedFirstMoment, this.m, 'm'],
        [adam.accumulatedSecondMoment, this.v, 'v'],
      ] as const) {
        const slot = slots[i];
        if (slot) {
          tf.tidy(() => slot.variable.assign(tf.tensor(values[i], variable.shape, 'float32')));
        } else {
          const value = tf.tensor(values[i], variable.shape, 'float32');
          slots[i] = { originalName: `${variable.name}/${suffix}`, variable: value.variable(false) };
          value.dispose();
        }
      }
    });
    tf.tidy(() => {
      adam.accBeta1.assign(tf.scalar(this.accBeta1));
      adam.accBeta2.assign(tf.scalar(this.accBeta2));
    });
    adam.iterations_ = this.iterations;
  }
}
