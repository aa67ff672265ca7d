import { badInput } from '../../errors';
import type { RgbImage } from '../image/types';
import { mulberry32 } from '../rng';

/**
 * Made-up cells that look enough like C-NMC to exercise the pipeline at scale (load tests, thousands of
 * uploads, training smoke runs) without shipping thousands of patient images. They are not data: no
 * figure measured on them says anything about leukemia. The classes differ the way the real ones do
 * on average: ALL blasts are larger, with irregular or clefted outlines and a few pale nucleoli;
 * normal cells are smaller and rounder.
 */

const between = (random: () => number, low: number, high: number) => low + (high - low) * random();

/** Smooth noise in about [-1, 1]: random values on a coarse grid, bilinearly interpolated. */
export function valueNoise(
  random: () => number,
  size: number,
  cell: number,
): (x: number, y: number) => number {
  const n = Math.ceil(size / cell) + 2;
  const grid = Float32Array.from({ length: n * n }, () => 2 * random() - 1);
  return (x, y) => {
    const gx = x / cell;
    const gy = y / cell;
    const x0 = Math.floor(gx);
    const y0 = Math.floor(gy);
    const fx = gx - x0;
    const fy = gy - y0;
    const at = (i: number, j: number) => grid[j * n + i];
    const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
    const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
    return top * (1 - fy) + bottom * fy;
  };
}

/**
 * A C-NMC-like cell image, the same for the same seed and options: a purple, textured cell with a paler
 * rim of cytoplasm on a black square canvas.
 */
export function syntheticCell(seed: number, opts: { label: 0 | 1; size?: number }): RgbImage {
  const size = opts.size ?? 450;
  if (!Number.isInteger(size) || size < 16 || size > 4096)
    throw badInput(`size must be 16-4096; got ${size}.`);
  const random = mulberry32(seed * 2 + opts.label);
  const blast = opts.label === 1;

  const radius = size * (blast ? between(random, 0.17, 0.25) : between(random, 0.13, 0.18));
  const cx = size / 2 + between(random, -0.03, 0.03) * size;
  const cy = size / 2 + between(random, -0.03, 0.03) * size;
  const wobble = Array.from({ length: 5 }, (_, i) => ({
    k: i + 2,
    amplitude: blast ? between(random, 0.01, 0.05) : between(random, 0.003, 0.015),
    phase: between(random, 0, 2 * Math.PI),
  }));
  const cleft =
    blast && random() < 0.7
      ? { angle: between(random, 0, 2 * Math.PI), depth: between(random, 0.12, 0.3) }
      : null;
  const outline = (angle: number) => {
    let r = 1;
    for (const w of wobble) r += w.amplitude * Math.cos(w.k * angle + w.phase);
    if (cleft) {
      const d = Math.atan2(Math.sin(angle - cleft.angle), Math.cos(angle - cleft.angle));
      r -= cleft.depth * Math.exp(-((d / 0.12) ** 2));
    }
    return radius * r;
  };
  const nucleoli = blast
    ? Array.from({ length: 2 + Math.floor(random() * 3) }, () => {
        const angle = between(random, 0, 2 * Math.PI);
        const distance = between(random, 0, 0.5) * radius;
        return {
          x: cx + distance * Math.cos(angle),
          y: cy + distance * Math.sin(angle),
          r: between(random, 0.06, 0.1) * radius,
        };
      })
    : [];
  const chromatin = valueNoise(random, size, Math.max(2, Math.round(size / (blast ? 40 : 28))));
  const stain = { r: between(random, 65, 85), g: between(random, 25, 38), b: between(random, 70, 95) };
  const rimWidth = blast ? 0.04 : 0.1;

  // The outline sampled at fine angle steps: per-pixel trigonometry would make a 450 px cell 5x slower.
  const steps = 2048;
  const edges = Float32Array.from({ length: steps + 1 }, (_, i) =>
    outline((i / steps) * 2 * Math.PI - Math.PI),
  );
  const reach = Math.max(...edges);

  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const distance = Math.hypot(dx, dy);
      if (distance > reach) continue;
      const edge = edges[Math.round(((Math.atan2(dy, dx) + Math.PI) / (2 * Math.PI)) * steps)];
      if (distance > edge) continue;
      let shade = 1 + 0.18 * chromatin(x, y) + 0.04 * (random() * 2 - 1);
      let [r, g, b] = [stain.r, stain.g, stain.b];
      if (distance > edge * (1 - rimWidth)) [r, g, b] = [r * 1.35, g * 1.6, b * 1.25]; // cytoplasm
      for (const spot of nucleoli) {
        if (Math.hypot(x - spot.x, y - spot.y) < spot.r) {
          shade *= 1.25;
          b *= 1.1;
        }
      }
      const i = (y * size + x) * 3;
      data[i] = Math.min(255, Math.max(12, Math.round(r * shade)));
      data[i + 1] = Math.min(255, Math.max(10, Math.round(g * shade)));
      data[i + 2] = Math.min(255, Math.max(12, Math.round(b * shade)));
    }
  }
  return { width: size, height: size, data };
}

/** An uncompressed 24-bit bottom-up BMP, the layout C-NMC uses. */
export function encodeBmp(img: RgbImage): Buffer {
  const { width, height, data } = img;
  if (width < 1 || height < 1 || data.length !== width * height * 3) {
    throw badInput(`Expected an RGB image of ${width}x${height}; got ${data.length} bytes.`);
  }
  const stride = Math.ceil((width * 3) / 4) * 4;
  const pixelOffset = 54;
  const out = Buffer.alloc(pixelOffset + stride * height);
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(pixelOffset, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(width, 18);
  out.writeInt32LE(height, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(24, 28);
  out.writeUInt32LE(0, 30);
  out.writeUInt32LE(stride * height, 34);
  out.writeInt32LE(3779, 38); // 96 dpi, as in C-NMC files
  out.writeInt32LE(3779, 42);
  for (let y = 0; y < height; y++) {
    let dst = pixelOffset + (height - 1 - y) * stride;
    for (let x = 0, src = y * width * 3; x < width; x++, src += 3, dst += 3) {
      out[dst] = data[src + 2];
      out[dst + 1] = data[src + 1];
      out[dst + 2] = data[src];
    }
  }
  return out;
}
