import * as tf from '@tensorflow/tfjs';

type Shape4D = [number, number, number, number];
type Pad =
  'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

export interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

/**
 * The forward convolution a gradient kernel belongs to, as tfjs-core computes it (so 'same' splits its
 * padding exactly as the forward Conv2D did). Only what training our networks needs is accepted; anything
 * else fails loudly instead of producing a wrong gradient.
 */
export function convGeometry(
  kernelName: string,
  inShape: Shape4D,
  filterShape: Shape4D,
  attrs: { strides: number | [number, number]; pad: Pad; dataFormat?: string; dimRoundingMode?: string },
  dilations: number | [number, number] = 1,
): ConvGeometry {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') {
    throw new Error(
      `${kernelName} (wasm, Lymphoscope): dataFormat '${attrs.dataFormat}' is not supported; use NHWC.`,
    );
  }
  const [dilationHeight, dilationWidth] = typeof dilations === 'number' ? [dilations, dilations] : dilations;
  if (dilationHeight !== 1 || dilationWidth !== 1) {
    throw new Error(
      `${kernelName} (wasm, Lymphoscope): dilation ${dilationHeight}x${dilationWidth} is not supported; use 1.`,
    );
  }
  const info = tf.backend_util.computeConv2DInfo(
    inShape,
    filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/**
 * The engine hands kernels Tensors when ops call them, but the kernel contract only promises TensorInfo.
 * Wrapping one in a Tensor takes a reference that the caller must release.
 */
export function withTensor<T>(info: tf.TensorInfo, use: (t: tf.Tensor) => T): T {
  if (info instanceof tf.Tensor) return use(info);
  const wrapped = tf.engine().makeTensorFromTensorInfo(info);
  try {
    return use(wrapped);
  } finally {
    wrapped.dispose();
  }
}

/** Explicit padding for tf.conv2d, NHWC: [[0,0],[top,bottom],[left,right],[0,0]]. */
export type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

/**
 * Lets a convolution read "rows top..bottom beyond the edges" of x: positive amounts become explicit
 * padding (XNNPACK pads on the fly, no copy), negative amounts crop x, which only happens when trailing
 * rows of x can never reach the output.
 */
export function windowOf(
  x: tf.Tensor4D,
  top: number,
  bottom: number,
  left: number,
  right: number,
): { x: tf.Tensor4D; pad: ExplicitPadding } {
  const cropTop = Math.max(0, -top);
  const cropBottom = Math.max(0, -bottom);
  const cropLeft = Math.max(0, -left);
  const cropRight = Math.max(0, -right);
  let window = x;
  if (cropTop + cropBottom + cropLeft + cropRight > 0) {
    const [n, h, w, c] = x.shape;
    window = tf.slice(
      x,
      [0, cropTop, cropLeft, 0],
      [n, h - cropTop - cropBottom, w - cropLeft - cropRight, c],
    );
  }
  const pad: ExplicitPadding = [
    [0, 0],
    [Math.max(0, top), Math.max(0, bottom)],
    [Math.max(0, left), Math.max(0, right)],
    [0, 0],
  ];
  return { x: window, pad };
}
