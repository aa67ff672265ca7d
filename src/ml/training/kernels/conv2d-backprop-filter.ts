import * as tf from '@tensorflow/tfjs';
import { convGeometry, windowOf, withTensor } from './geometry';
import type { KernelArgs } from './heap';

type Shape4D = [number, number, number, number];

/**
 * dW of a convolution, which the wasm backend does not ship at all.
 *
 * dW[a, b, ci, co] = sum_{n, i, j} x[n, i*s + a - padTop, j*s + b - padLeft, ci] * dy[n, i, j, co]. Read with
 * ci as the batch axis, n as the channel axis and dy as an [outHeight, outWidth, n, co] filter dilated by the
 * stride, that is a plain forward convolution whose output is [ci, kh, kw, co]; XNNPACK runs it without
 * materialising the im2col matrix (about 9x the activations, hundreds of MB at 96x96).
 */
export function conv2dBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const g = convGeometry('Conv2DBackpropFilter', x.shape as Shape4D, attrs.filterShape, attrs);
  return withTensor(x, (xTensor) =>
    withTensor(dy, (dyTensor) =>
      tf.tidy(() => {
        const channelsAsBatch = tf.transpose(xTensor as tf.Tensor4D, [3, 1, 2, 0]);
        const dyAsFilter = tf.transpose(dyTensor as tf.Tensor4D, [1, 2, 0, 3]);
        // Output row a reads x rows a - padTop + i*stride for i < outHeight, so the last tap needs rows up
        // to (outHeight-1)*stride + filterHeight - 1 - padTop.
        const bottom = (g.outHeight - 1) * g.strideHeight + g.filterHeight - g.inHeight - g.padTop;
        const right = (g.outWidth - 1) * g.strideWidth + g.filterWidth - g.inWidth - g.padLeft;
        const window = windowOf(channelsAsBatch, g.padTop, bottom, g.padLeft, right);
        const gradient = tf.conv2d(window.x, dyAsFilter, 1, window.pad, 'NHWC', [
          g.strideHeight,
          g.strideWidth,
        ]);
        return tf.transpose(gradient, [1, 2, 0, 3]);
      }),
    ),
  );
}
