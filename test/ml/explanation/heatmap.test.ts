import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { LymphoscopeError } from '../../../src/errors';
import { gradCam } from '../../../src/ml/explanation/grad-cam';
import { JET, pngOfScanlines, renderHeatmapPng } from '../../../src/ml/explanation/heatmap';
import { decodeImage } from '../../../src/ml/image/decode';
import { sampleImages } from '../../helpers/sample';
import type { RgbImage } from '../../../src/ml/image/types';

const SIZE = 16;

/**
 * A tiny conv net with hand-set weights whose decision depends on red: `last_conv` has a red detector
 * (channel 0: R - G over 3x3) and a green detector (channel 1: G - R); the head says ALL when there is
 * red and normal when there is green. With the red spot in one quadrant and green spots in the other
 * three, the decision depends on that one quadrant, and Grad-CAM must point there.
 */
function redDetector(head: 'pool' | 'flatten', scale = 1): tf.LayersModel {
  const model = tf.sequential();
  model.add(
    tf.layers.conv2d({
      inputShape: [SIZE, SIZE, 3],
      filters: 2,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      name: 'last_conv',
    }),
  );
  if (head === 'pool') {
    model.add(tf.layers.batchNormalization({ name: 'bn' }));
    model.add(tf.layers.globalAveragePooling2d({ name: 'pool' }));
    model.add(tf.layers.dropout({ rate: 0.5, name: 'dropout' }));
  } else {
    model.add(tf.layers.flatten({ name: 'flatten' }));
  }
  model.add(tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'probability_all' }));

  const kernel = tf.buffer([3, 3, 3, 2]);
  for (let y = 0; y < 3; y++) {
    for (let x = 0; x < 3; x++) {
      kernel.set(1, y, x, 0, 0);
      kernel.set(-1, y, x, 1, 0);
      kernel.set(-1, y, x, 0, 1);
      kernel.set(1, y, x, 1, 1);
    }
  }
  const conv = model.getLayer('last_conv');
  conv.setWeights([kernel.toTensor(), tf.zeros([2])]);
  const dense = model.getLayer('probability_all');
  const features = head === 'pool' ? 2 : SIZE * SIZE * 2;
  // Weight +4 per red activation and -1 per green one, averaged over positions for the flatten head.
  const weights = Array.from(
    { length: features },
    (_, i) => ((i % 2 === 0 ? 4 : -1) * scale) / (head === 'pool' ? 1 : 8),
  );
  dense.setWeights([tf.tensor2d(weights, [features, 1]), tf.tensor1d([-0.5])]);
  return model;
}

type Quadrant = 'topLeft' | 'topRight' | 'bottomLeft' | 'bottomRight';
const QUADRANTS: Record<Quadrant, [number, number]> = {
  topLeft: [0, 0],
  topRight: [8, 0],
  bottomLeft: [0, 8],
  bottomRight: [8, 8],
};

/** Black 16x16 with a 4x4 red spot in `red` and 4x4 green spots in the other quadrants. */
function spots(red: Quadrant): tf.Tensor4D {
  const pixels = new Float32Array(SIZE * SIZE * 3);
  for (const [name, [qx, qy]] of Object.entries(QUADRANTS)) {
    const channel = name === red ? 0 : 1;
    for (let y = qy + 2; y < qy + 6; y++)
      for (let x = qx + 2; x < qx + 6; x++) pixels[(y * SIZE + x) * 3 + channel] = 1;
  }
  return tf.tensor4d(pixels, [1, SIZE, SIZE, 3]);
}

function quadrantMeans(heatmap: Float32Array): Record<Quadrant, number> {
  const mean = ([qx, qy]: [number, number]) => {
    let sum = 0;
    for (let y = qy; y < qy + 8; y++) for (let x = qx; x < qx + 8; x++) sum += heatmap[y * SIZE + x];
    return sum / 64;
  };
  return {
    topLeft: mean(QUADRANTS.topLeft),
    topRight: mean(QUADRANTS.topRight),
    bottomLeft: mean(QUADRANTS.bottomLeft),
    bottomRight: mean(QUADRANTS.bottomRight),
  };
}

const brightest = (means: Record<Quadrant, number>) =>
  (Object.keys(means) as Quadrant[]).reduce((a, b) => (means[b] > means[a] ? b : a));

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('gradCam', () => {
  it.each(['pool', 'flatten'] as const)('points at the quadrant that decides (%s head)', (head) => {
    const model = redDetector(head);
    for (const quadrant of Object.keys(QUADRANTS) as Quadrant[]) {
      const input = spots(quadrant);
      const { heatmap, probabilityAll, target } = gradCam(model, input);
      expect(target).toBe('all');
      expect(heatmap).toHaveLength(SIZE * SIZE);
      expect(Math.min(...heatmap)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...heatmap)).toBeCloseTo(1, 6);
      const means = quadrantMeans(heatmap);
      expect(brightest(means)).toBe(quadrant);
      for (const other of Object.keys(QUADRANTS) as Quadrant[]) {
        if (other !== quadrant) expect(means[other]).toBeLessThan(means[quadrant] / 3);
      }
      const predicted = tf.tidy(() => (model.predict(input) as tf.Tensor).dataSync()[0]);
      expect(probabilityAll).toBeCloseTo(predicted, 5);
      input.dispose();
    }
    model.dispose();
  });

  it("with target 'hem' shows the evidence for normal instead: the green spots", () => {
    const model = redDetector('pool');
    const input = spots('topLeft');
    const { heatmap, target } = gradCam(model, input, 'last_conv', 'hem');
    expect(target).toBe('hem');
    const means = quadrantMeans(heatmap);
    expect(means.topLeft).toBeLessThan(0.05);
    expect(Math.min(means.topRight, means.bottomLeft, means.bottomRight)).toBeGreaterThan(0.2);
    input.dispose();
    model.dispose();
  });

  it('still explains a saturated prediction (p rounds to 1 in float32)', () => {
    const model = redDetector('pool', 400);
    const input = spots('bottomRight');
    const { heatmap, probabilityAll } = gradCam(model, input);
    expect(probabilityAll).toBeCloseTo(1, 6);
    expect(brightest(quadrantMeans(heatmap))).toBe('bottomRight');
    input.dispose();
    model.dispose();
  });

  it('leaks no tensors', () => {
    const model = redDetector('pool');
    const input = spots('topRight');
    gradCam(model, input); // warm-up: the first call may create lasting state
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) gradCam(model, input);
    expect(tf.memory().numTensors).toBe(before);
    expect(input.isDisposed).toBe(false);
    input.dispose();
    model.dispose();
  });

  it('returns zeros when nothing argues for the target, and refuses unknown layers and batches', () => {
    const model = redDetector('pool');
    const greenOnly = tf.tidy(() => spots('topLeft').mul(tf.tensor1d([0, 1, 0])) as tf.Tensor4D);
    expect(gradCam(model, greenOnly).heatmap.every((v) => v === 0)).toBe(true);
    expect(() => gradCam(model, greenOnly, 'no_such_layer')).toThrow(LymphoscopeError);
    const batch = tf.zeros([2, SIZE, SIZE, 3]) as tf.Tensor4D;
    expect(() => gradCam(model, batch)).toThrow(/one image at a time/);
    tf.dispose([greenOnly, batch]);
    model.dispose();
  });
});

/**
 * The overlay by its definition, one pixel at a time: the heat map sampled bilinearly at pixel centres
 * (the two map rows blended first, then the two columns), capped at 1; where it is above 0, 60% of it in
 * the jet colour over the cell brightened until its brightest channel reaches 255 (at most 3x), rounded;
 * elsewhere the brightened cell, rounded.
 */
function overlayOnePixelAtATime(image: RgbImage, heat: Float32Array, size: number): Uint8Array {
  // Read once: every lookup of the global Math inside Jest's sandbox is slow, and this runs per pixel.
  const { floor, max, min, round } = Math;
  let brightest = 1;
  for (const v of image.data) brightest = max(brightest, v);
  const gain = min(3, 255 / brightest);
  const axis = (i: number, length: number) => {
    const c = min(size - 1, max(0, ((i + 0.5) * size) / length - 0.5));
    const lower = floor(c);
    return [lower, min(size - 1, lower + 1), c - lower];
  };
  const expected = new Uint8Array(image.data.length);
  for (let y = 0; y < image.height; y++) {
    const [y0, y1, fy] = axis(y, image.height);
    for (let x = 0; x < image.width; x++) {
      const [x0, x1, fx] = axis(x, image.width);
      const column = (j: number) => heat[y0 * size + j] * (1 - fy) + heat[y1 * size + j] * fy;
      const h = min(1, column(x0) * (1 - fx) + column(x1) * fx);
      for (let c = 0; c < 3; c++) {
        const i = (y * image.width + x) * 3 + c;
        const cell = min(255, image.data[i] * gain);
        if (!(h > 0)) {
          expected[i] = round(cell);
          continue;
        }
        const stop = min(JET.length - 2, floor(h * (JET.length - 1)));
        const f = h * (JET.length - 1) - stop;
        const jet = JET[stop][c] + (JET[stop + 1][c] - JET[stop][c]) * f;
        expected[i] = floor((1 - 0.6 * h) * cell + 0.6 * h * jet + 0.5);
      }
    }
  }
  return expected;
}

describe('renderHeatmapPng', () => {
  const cell: RgbImage = (() => {
    const width = 40;
    const data = new Uint8Array(width * width * 3);
    for (let p = 0; p < width * width; p++) data.set([80, 30, 85], p * 3);
    return { width, height: width, data };
  })();

  it('draws the heat over the cell: untouched (brightened) where cold, towards dark red where hot', async () => {
    const heat = new Float32Array(4 * 4);
    heat[0] = 1; // the top-left cell of a 4x4 map covers the image's top-left 10x10 pixels
    const png = await renderHeatmapPng(cell, heat, 4);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: 40, height: 40, channels: 3 });
    const px = (x: number, y: number) => Array.from(data.subarray((y * 40 + x) * 3, (y * 40 + x) * 3 + 3));
    // Brightened 3x (the cap) where there is no heat.
    expect(px(39, 39)).toEqual([240, 90, 255]);
    // Fully hot: 40% cell + 60% jet(1) = dark red (128, 0, 0).
    expect(px(0, 0)).toEqual([
      Math.round(0.4 * 240 + 0.6 * 128),
      Math.round(0.4 * 90),
      Math.round(0.4 * 255),
    ]);
    // In between, the overlay fades with the heat.
    const [r0] = px(0, 0);
    const [r5] = px(12, 0);
    expect(Math.abs(r5 - 240)).toBeLessThan(Math.abs(r0 - 240));
  });

  it('gives, on a real cell, the pixels of the overlay computed one pixel at a time', async () => {
    const image = await decodeImage(sampleImages()[3].bytes);
    const size = 12;
    // A blob of heat with a cold hole and a saturated spot: every branch of the overlay.
    const heat = Float32Array.from({ length: size * size }, (_, k) => {
      const x = k % size;
      const y = (k - x) / size;
      return x === 6 && y === 6 ? 0 : Math.max(0, 1.3 - Math.hypot(x - 5, y - 7) / 4);
    });
    const png = await renderHeatmapPng(image, heat, size);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: image.width, height: image.height, channels: 3 });
    expect(Buffer.from(overlayOnePixelAtATime(image, heat, size)).equals(data)).toBe(true);
  });

  it('gives those pixels at any size and for any heat, bands of rows included', async () => {
    let state = 11;
    const next = () => (state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32;
    // Rows shorter than the kernel's 16-byte filter step, rows that are not a multiple of it, and an
    // image tall and wide enough to be drawn in several bands of rows (2 MiB of pixels and scanlines each).
    for (const [width, height, size] of [
      [1, 1, 1],
      [5, 3, 4],
      [6, 2, 3],
      [33, 61, 7],
      [1500, 700, 9],
    ]) {
      const image: RgbImage = {
        width,
        height,
        data: Uint8Array.from({ length: width * height * 3 }, () => Math.floor(next() * 256)),
      };
      // Heat in [-0.5, 1.5), with zeros, and a few values that are not numbers or are infinite.
      const heat = Float32Array.from({ length: size * size }, () => {
        const u = next();
        if (u < 0.05) return [NaN, Infinity, -Infinity][Math.floor(u * 60)];
        return u < 0.3 ? 0 : 2 * u - 0.5;
      });
      const png = await renderHeatmapPng(image, heat, size);
      const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect({
        width,
        height,
        same: Buffer.from(overlayOnePixelAtATime(image, heat, size)).equals(data),
      }).toEqual({ width, height, same: true });
    }
  });

  it('refuses a heat map of the wrong size', async () => {
    await expect(renderHeatmapPng(cell, new Float32Array(10), 4)).rejects.toBeInstanceOf(LymphoscopeError);
  });
});

describe('pngOfScanlines', () => {
  it('makes PNGs that decode to the rows it was given, at any size', async () => {
    let state = 7;
    const next = () => (state = (state * 1103515245 + 12345) >>> 0) >>> 24;
    for (const [width, height] of [
      [1, 1],
      [5, 3],
      [450, 2],
      [33, 61],
    ]) {
      const rgb = Uint8Array.from({ length: width * height * 3 }, () => next());
      // Half the rows Sub-filtered (filter type 1), half stored as they are (type 0).
      const scanlines = Buffer.alloc((width * 3 + 1) * height);
      for (let y = 0; y < height; y++) {
        const row = y * (width * 3 + 1);
        scanlines[row] = y % 2;
        for (let i = 0; i < width * 3; i++) {
          const value = rgb[y * width * 3 + i];
          const left = y % 2 && i >= 3 ? rgb[y * width * 3 + i - 3] : 0;
          scanlines[row + 1 + i] = value - left;
        }
      }
      const png = await pngOfScanlines(scanlines, width, height);
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect(info).toMatchObject({ width, height, channels: 3 });
      expect(Buffer.from(rgb).equals(data)).toBe(true);
    }
    await expect(pngOfScanlines(Buffer.alloc(10), 3, 3)).rejects.toBeInstanceOf(LymphoscopeError);
  });
});
