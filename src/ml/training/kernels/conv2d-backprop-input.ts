import * as tf from '@tensorflow/tfjs';
import type { KernelArgs } from './heap';
import { convGeometry, windowOf, withTensor } from './geometry';

type Shape4D = [number, number, number, number];

/**
 * dx of a convolution, computed as a forward convolution so that it runs on XNNPACK like Conv2D does.
 *
 * dx[i] = sum_a dy[(i + padTop - a) / stride] * w[a] over the taps a where the division is exact. Inserting
 * stride-1 zeros between the rows of dy turns that into a stride-1 correlation of the dilated dy with the
 * spatially reversed filter whose in/out channels are swapped. The shipped wasm kernel is a scalar loop
 * that takes about two thirds of a training step; this one costs about as much as the forward pass.
 */
export function conv2dBackpropInput(args: KernelArgs): tf.TensorInfo {
  const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const g = convGeometry('Conv2DBackpropInput', attrs.inputShape, filter.shape as Shape4D, attrs);
  return withTensor(dy, (dyTensor) =>
    withTensor(filter, (filterTensor) =>
      tf.tidy(() => {
        const dilated = dilateSpatially(dyTensor as tf.Tensor4D, g.strideHeight, g.strideWidth);
        const [, dilatedHeight, dilatedWidth] = dilated.shape;
        // The correlation reads inHeight + filterHeight - 1 rows of the dilated dy, starting
        // filterHeight - 1 - padTop rows above it.
        const top = g.filterHeight - 1 - g.padTop;
        const left = g.filterWidth - 1 - g.padLeft;
        const bottom = g.inHeight + g.filterHeight - 1 - dilatedHeight - top;
        const right = g.inWidth + g.filterWidth - 1 - dilatedWidth - left;
        const window = windowOf(dilated, top, bottom, left, right);
        const flipped = tf.transpose(tf.reverse(filterTensor as tf.Tensor4D, [0, 1]), [0, 1, 3, 2]);
        return tf.conv2d(window.x, flipped, 1, window.pad);
      }),
    ),
  );
}

/**
 * [n, h, w, c] -> [n, h*sh, w*sw, c] with each value followed by sh-1 zero rows and sw-1 zero columns.
 * The trailing zeros are harmless: the caller's window crops or ignores them.
 */
function dilateSpatially(x: tf.Tensor4D, strideHeight: number, strideWidth: number): tf.Tensor4D {
  if (strideHeight === 1 && strideWidth === 1) return x;
  const [n, h, w, c] = x.shape;
  const spread = tf.pad(tf.reshape(x, [n, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, strideHeight - 1],
    [0, 0],
    [0, strideWidth - 1],
    [0, 0],
  ]);
  return tf.reshape(spread, [n, h * strideHeight, w * strideWidth, c]);
}
