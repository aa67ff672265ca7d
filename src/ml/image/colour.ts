/**
 * Colour changes of the kind that separate two labs' images of the same cell: the stain's hue, how
 * saturated it came out, and the white balance of the camera. All are linear maps of RGB that send
 * black to black, so the C-NMC background stays background.
 */

/** A 3x3 matrix, row-major: out[r] = sum_c m[r * 3 + c] * in[c]. */
export type ColourMatrix = readonly number[];

/**
 * Rotates hue by `hueRadians` around the grey axis and scales saturation (distance from grey) by
 * `saturation`, keeping each pixel's mean of R, G and B. `hueRadians` 0 and `saturation` 1 give the identity.
 */
export function hueSaturationMatrix(hueRadians: number, saturation: number): ColourMatrix {
  // Rodrigues' rotation about the unit vector (1, 1, 1) / sqrt(3), then scaled away from grey.
  const cos = Math.cos(hueRadians);
  const sin = Math.sin(hueRadians);
  const third = (1 - cos) / 3;
  const root = sin / Math.sqrt(3);
  const rotation = [
    cos + third,
    third - root,
    third + root,
    third + root,
    cos + third,
    third - root,
    third - root,
    third + root,
    cos + third,
  ];
  // grey = J / 3 (J all ones): M = grey + saturation * (R - grey); R maps grey to grey, so R J = J.
  return rotation.map((v) => 1 / 3 + saturation * (v - 1 / 3));
}

/** Applies `matrix` and then per-channel `gains` to HWC RGB values in [0, 1], clamped to [0, 1]; in place. */
export function applyColour(
  pixels: Float32Array,
  matrix: ColourMatrix,
  gains: readonly number[] = [1, 1, 1],
): void {
  // Unrolled, the matrix and gains in locals: the same products and sums, in the same order.
  const [m0, m1, m2, m3, m4, m5, m6, m7, m8] = matrix;
  const [g0, g1, g2] = gains;
  const clamp = (v: number) => (v > 1 ? 1 : v < 0 ? 0 : v);
  for (let i = 0; i < pixels.length; i += 3) {
    const r = pixels[i];
    const g = pixels[i + 1];
    const b = pixels[i + 2];
    pixels[i] = clamp(g0 * (m0 * r + m1 * g + m2 * b));
    pixels[i + 1] = clamp(g1 * (m3 * r + m4 * g + m5 * b));
    pixels[i + 2] = clamp(g2 * (m6 * r + m7 * g + m8 * b));
  }
}
