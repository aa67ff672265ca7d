import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as Tf from '@tensorflow/tfjs';
import * as unbundled from '../../src/handlers/tfjs-unbundled';

/**
 * The stand-in the Lambda bundles use for three sub-packages of the @tensorflow/tfjs umbrella (an esbuild
 * alias in serverless.yml). The packaging test proves a whole bundle; this checks, in seconds, that the
 * umbrella installed now reads nothing from them that the stand-in lacks, and still computes with it.
 */
const ROOT = path.join(__dirname, '..', '..');
const STOOD_IN = ['@tensorflow/tfjs-backend-webgl', '@tensorflow/tfjs-converter', '@tensorflow/tfjs-data'];

describe('tfjs-unbundled', () => {
  it('is aliased in serverless.yml for exactly the three sub-packages it stands in for', () => {
    const yml = readFileSync(path.join(ROOT, 'serverless.yml'), 'utf8');
    const aliased = [...yml.matchAll(/^\s*'([^']+)':\s*\.\/src\/handlers\/tfjs-unbundled\.ts\s*$/gm)].map(
      (m) => m[1],
    );
    expect(aliased.sort()).toEqual(STOOD_IN);
  });

  it("exports every name the umbrella's Node build reads from those packages", () => {
    const umbrella = readFileSync(require.resolve('@tensorflow/tfjs'), 'utf8');
    const read = new Set<string>();
    for (const pkg of STOOD_IN) {
      const binding = new RegExp(`var (\\w+) = require\\('${pkg.replace('/', '\\/')}'\\);`).exec(umbrella);
      expect(binding).not.toBeNull();
      for (const m of umbrella.matchAll(new RegExp(`\\b${binding![1]}\\.(\\w+)`, 'g'))) read.add(m[1]);
    }
    expect([...read].sort()).toEqual(['version_converter', 'version_data', 'version_webgl']);
    for (const name of read) expect(unbundled).toHaveProperty(name, 'not bundled');
  });

  it('lets the umbrella load with it and still build, run and differentiate a layers model', () => {
    // The cpu backend's advice to install tfjs-node, printed on first use, is not what is tested here.
    jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    let tf!: typeof Tf;
    jest.isolateModules(() => {
      for (const pkg of STOOD_IN) jest.doMock(pkg, () => unbundled);
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh umbrella, loaded with the stand-in
      tf = require('@tensorflow/tfjs') as typeof Tf;
    });
    expect(tf.version).toMatchObject({
      'tfjs-backend-webgl': 'not bundled',
      'tfjs-converter': 'not bundled',
      'tfjs-data': 'not bundled',
    });
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [3], units: 1, activation: 'sigmoid', kernelInitializer: 'ones' }),
      ],
    });
    const x = tf.tensor2d([[1, 2, 3]]);
    const y = model.predict(x) as Tf.Tensor;
    expect(y.dataSync()[0]).toBeCloseTo(1 / (1 + Math.exp(-6)), 5);
    // Grad-CAM needs the gradients the umbrella registers.
    const gradient = tf.grad((input: Tf.Tensor) => (model.apply(input) as Tf.Tensor).sum())(x);
    expect(gradient.shape).toEqual([1, 3]);
    expect(Array.from(gradient.dataSync()).every((g) => g > 0)).toBe(true);
    tf.dispose([x, y, gradient]);
    model.dispose();
  });
});
