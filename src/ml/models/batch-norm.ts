import * as tf from '@tensorflow/tfjs';

/**
 * "Precise" batch-norm statistics (Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021): after
 * training, each batch-norm layer's moving mean and variance are replaced by the exact mean and
 * variance of its input over the given images, layer by layer in network order, so that each layer is
 * measured on inputs that the layers before it already normalise with their new statistics.
 *
 * Why: the moving averages are an exponential average over the last few dozen batches of a network
 * whose weights were still changing, and on a small data set with augmentation they can sit far from
 * what the final weights produce; then inference-mode outputs differ from training-mode outputs and
 * probabilities drift towards one class. Measuring after the fact costs one forward pass per layer.
 *
 * Returns the number of layers updated (0 for a network without batch norm, which is left as it was).
 */
export async function recomputeBatchNormStatistics(
  model: tf.LayersModel,
  images: Float32Array[],
  inputSize: number,
  batchSize = 32,
): Promise<number> {
  const norms = model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
  if (norms.length === 0 || images.length === 0) return 0;
  const perImage = inputSize * inputSize * 3;
  for (const layer of norms) {
    const probe = tf.model({ inputs: model.inputs, outputs: layer.input as tf.SymbolicTensor });
    const channels = (layer.input as tf.SymbolicTensor).shape.at(-1) as number;
    // Sums in float64 on the JS side: exact enough whatever the number of images.
    const sum = new Float64Array(channels);
    const sumSquares = new Float64Array(channels);
    let count = 0;
    for (let start = 0; start < images.length; start += batchSize) {
      const chunk = images.slice(start, start + batchSize);
      const flat = new Float32Array(chunk.length * perImage);
      chunk.forEach((pixels, i) => flat.set(pixels, i * perImage));
      const [mean, meanSquare] = tf.tidy(() => {
        const x = tf.tensor4d(flat, [chunk.length, inputSize, inputSize, 3]);
        const activations = probe.predict(x) as tf.Tensor;
        const axes = [0, 1, 2];
        return [tf.mean(activations, axes), tf.mean(tf.square(activations), axes)];
      });
      const positions = (probe.outputs[0].shape[1] as number) * (probe.outputs[0].shape[2] as number);
      const weight = chunk.length * positions;
      const [m, m2] = [await mean.data(), await meanSquare.data()];
      tf.dispose([mean, meanSquare]);
      for (let c = 0; c < channels; c++) {
        sum[c] += m[c] * weight;
        sumSquares[c] += m2[c] * weight;
      }
      count += weight;
    }
    const movingMean = Float32Array.from(sum, (s) => s / count);
    const movingVariance = Float32Array.from(sumSquares, (s, c) =>
      Math.max(s / count - movingMean[c] ** 2, 0),
    );
    const weights = layer.getWeights();
    // tfjs orders a batch-norm layer's weights [gamma?, beta?, moving_mean, moving_variance].
    const replaced = [
      ...weights.slice(0, weights.length - 2),
      tf.tensor1d(movingMean),
      tf.tensor1d(movingVariance),
    ];
    layer.setWeights(replaced);
    tf.dispose(replaced.slice(-2));
  }
  return norms.length;
}
