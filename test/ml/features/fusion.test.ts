import {
  blendStack,
  fitFusion,
  fitMorphologyStack,
  FUSION_FEATURES,
  fuse,
  isMorphologyStack,
  morphologyVector,
  TEXTURE_FUSION_FEATURES,
  type FusionExample,
  type MorphologyStack,
} from '../../../src/ml/features/fusion';
import { logit, logitOf, sigmoid } from '../../../src/ml/features/logistic';
import type { Morphology } from '../../../src/ml/features/morphology';
import { Rng } from '../../../src/ml/rng';
import { TEXTURE_FEATURES, type Texture } from '../../../src/ml/features/texture';

function cell(areaPx: number, extra: Partial<Morphology> = {}): Morphology {
  return {
    areaPx,
    perimeterPx: 2 * Math.sqrt(Math.PI * areaPx),
    circularity: 0.9,
    solidity: 0.97,
    eccentricity: 0.4,
    equivalentDiameterPx: Math.sqrt((4 * areaPx) / Math.PI),
    meanIntensity: 80,
    intensityStd: 20,
    meanRgb: [90, 40, 100],
    ...extra,
  };
}

/** Blasts are larger: area carries the label, with overlap; the other features are noise. */
function cells(n: number, seed: number): FusionExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const label: 0 | 1 = i % 2 === 0 ? 1 : 0;
    const area = (label ? 30000 : 20000) * (0.75 + 0.5 * rng.next());
    return {
      label,
      morphology: cell(area, { circularity: 0.8 + 0.15 * rng.next(), meanIntensity: 70 + 20 * rng.next() }),
    };
  });
}

describe('morphology stack', () => {
  it('computes the fused probability as the two logistic layers say', () => {
    const stack: MorphologyStack = {
      kind: 'morphology-stack',
      morphology: {
        features: [...FUSION_FEATURES],
        mean: FUSION_FEATURES.map(() => 1),
        scale: FUSION_FEATURES.map(() => 2),
        weights: FUSION_FEATURES.map((_, i) => (i === 0 ? 0.5 : 0)),
        bias: -0.25,
      },
      combiner: {
        features: ['cnnLogit', 'morphologyLogit'],
        mean: [0.1, 0.2],
        scale: [1.5, 0.5],
        weights: [0.8, 1.2],
        bias: 0.3,
      },
    };
    const m = cell(25000);
    const morphologyLogit = -0.25 + 0.5 * ((Math.log(25000) - 1) / 2);
    const expected = sigmoid(0.3 + 0.8 * ((logit(0.7) - 0.1) / 1.5) + 1.2 * ((morphologyLogit - 0.2) / 0.5));
    expect(fuse(stack, 0.7, m)).toBeCloseTo(expected, 12);
  });

  it('blends as the mean of the two log-odds', () => {
    const train = cells(40, 1);
    const stack = blendStack(train);
    const m = cell(28000);
    const morphologyLogit = logitOf(stack.morphology, morphologyVector(m));
    expect(fuse(stack, 0.8, m)).toBeCloseTo(sigmoid((logit(0.8) + morphologyLogit) / 2), 12);
  });

  it('learns to trust the informative input: morphology over a network that guesses', () => {
    const train = cells(60, 2);
    const validation = cells(40, 3);
    const guessing = new Rng(4);
    const stack = fitMorphologyStack(
      train,
      validation,
      validation.map(() => 0.3 + 0.4 * guessing.next()),
    );
    const [cnnWeight, morphologyWeight] = stack.combiner.weights;
    expect(morphologyWeight).toBeGreaterThan(0.5);
    expect(Math.abs(cnnWeight)).toBeLessThan(morphologyWeight / 2);
    // Larger cells get a higher fused probability, whatever the network said.
    expect(fuse(stack, 0.5, cell(34000))).toBeGreaterThan(fuse(stack, 0.5, cell(16000)));
  });

  it('learns to trust a network that knows better than morphology', () => {
    const train = cells(60, 5);
    const validation = cells(40, 6);
    const knowing = validation.map((e) => (e.label ? 0.8 : 0.2));
    const stack = fitMorphologyStack(train, validation, knowing);
    expect(stack.combiner.weights[0]).toBeGreaterThan(stack.combiner.weights[1]);
  });

  it('answers for a cell with no foreground (NaN features read as average)', () => {
    const stack = blendStack(cells(20, 7));
    const empty = cell(0, {
      perimeterPx: 0,
      circularity: NaN,
      solidity: NaN,
      eccentricity: NaN,
      meanIntensity: NaN,
      intensityStd: NaN,
      meanRgb: [NaN, NaN, NaN],
    });
    const p = fuse(stack, 0.6, empty);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1);
  });

  it('recognises a well-formed stack and refuses a damaged one', () => {
    const stack = fitMorphologyStack(cells(20, 8), cells(10, 9), Array(10).fill(0.5));
    expect(isMorphologyStack(JSON.parse(JSON.stringify(stack)))).toBe(true);
    expect(isMorphologyStack({ ...stack, kind: 'other' })).toBe(false);
    expect(isMorphologyStack({ ...stack, combiner: { ...stack.combiner, weights: [1] } })).toBe(false);
    expect(isMorphologyStack(null)).toBe(false);
  });
});

/** A texture whose nucleus share carries the label; everything else is constant. */
function textured(label: 0 | 1, rng: Rng): Morphology {
  const texture = Object.fromEntries(TEXTURE_FEATURES.map((name) => [name, 0.5])) as unknown as Texture;
  texture.nucleusShare = (label ? 0.8 : 0.6) + 0.1 * rng.next();
  // Area says nothing here: the same spread for both classes.
  return { ...cell(20000 + 10000 * rng.next()), texture };
}

describe('texture blend', () => {
  const rng = new Rng(11);
  const train: FusionExample[] = Array.from({ length: 60 }, (_, i) => {
    const label: 0 | 1 = i % 2 ? 1 : 0;
    return { label, morphology: textured(label, rng) };
  });

  it('reads the chromatin texture beside the morphology, by feature name', async () => {
    const stack = await fitFusion('texture-blend', train, () => Promise.reject(new Error('not asked')));
    expect(stack.morphology.features).toEqual([...TEXTURE_FUSION_FEATURES]);
    expect(isMorphologyStack(JSON.parse(JSON.stringify(stack)))).toBe(true);
    const blast = textured(1, new Rng(1));
    const normal = { ...blast, texture: { ...blast.texture!, nucleusShare: 0.55 } };
    expect(fuse(stack, 0.5, blast)).toBeGreaterThan(fuse(stack, 0.5, normal) + 0.1);
    // The morphology-only blend cannot see it.
    const plain = await fitFusion('morphology-blend', train, () => Promise.reject(new Error('not asked')));
    expect(plain.morphology.features).toEqual([...FUSION_FEATURES]);
    expect(Math.abs(fuse(plain, 0.5, blast) - fuse(plain, 0.5, normal))).toBeLessThan(1e-9);
  });

  it('serves a record measured before texture was, reading its texture as average', async () => {
    const stack = await fitFusion('texture-blend', train, () => Promise.reject(new Error('not asked')));
    const old = cell(25000);
    expect(old.texture).toBeUndefined();
    const p = fuse(stack, 0.7, old);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1);
  });

  it('asks for the network on validation cells only for a fitted combiner', async () => {
    const validation = cells(10, 12);
    let asked = 0;
    const stack = await fitFusion('morphology-stack', cells(20, 13), async () => {
      asked++;
      return { cells: validation, cnn: validation.map(() => 0.5) };
    });
    expect(asked).toBe(1);
    expect(stack.combiner.weights).toHaveLength(2);
  });

  it('refuses a stack whose morphology model reads features it does not know', () => {
    const stack = blendStack(train, TEXTURE_FUSION_FEATURES);
    const renamed = {
      ...stack,
      morphology: {
        ...stack.morphology,
        features: stack.morphology.features.map((f, i) => (i === 12 ? 'mystery' : f)),
      },
    };
    expect(isMorphologyStack(renamed)).toBe(false);
    expect(() => morphologyVector(cell(1000), ['mystery'])).toThrow(/Unknown fusion feature 'mystery'/);
  });
});
