import * as tf from '@tensorflow/tfjs';

/**
 * The network issue 6 measured its reference figures on: "6 convs of 32 filters, dense 64". Laid out as
 * the seed study's 2x2x1x1 (two blocks of two 3x3 convolutions, two of one, 2x2 max pooling after each,
 * Keras' 'valid' padding) with 32 filters everywhere and a 64-unit dense layer before the sigmoid: at
 * 96x96 that is 0.25 GFLOP per image, which matches the issue's 1,150 images/s at about 290 GFLOP/s.
 */
export function buildReferenceNet(inputSize: number): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'image' });
  let x: tf.SymbolicTensor = input;
  let seed = 100;
  [2, 2, 1, 1].forEach((convs, block) => {
    for (let c = 0; c < convs; c++) {
      const last = block === 3;
      x = tf.layers
        .conv2d({
          filters: 32,
          kernelSize: 3,
          activation: 'relu',
          kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
          name: last ? 'last_conv' : `block${block + 1}_conv${c + 1}`,
        })
        .apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, name: `block${block + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .dense({
      units: 64,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
      name: 'dense',
    })
    .apply(x) as tf.SymbolicTensor;
  const output = tf.layers
    .dense({
      units: 1,
      activation: 'sigmoid',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
      name: 'probability_all',
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'reference-6x32' });
}
