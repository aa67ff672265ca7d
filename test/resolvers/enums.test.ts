import { buildSchema, type GraphQLEnumType } from 'graphql';
import type { Architecture, ClassBalance, Fusion } from '../../src/generated/graphql';
import { typeDefs } from '../../src/generated/schema';
import { FUSION_KINDS } from '../../src/ml/features/fusion';
import { ARCHITECTURES } from '../../src/ml/models/architecture-names';
import { DEFAULT_TRAINING_CONFIG, validateTrainingConfig } from '../../src/ml/training/training-config';
import {
  architectureFromMl,
  architectureToMl,
  balanceToMl,
  configToGraphql,
  fusionFromMl,
  fusionToMl,
} from '../../src/resolvers/enums';
import type { JobConfig } from '../../src/services/training';

/** The schema's enums against the ML core's names: every value both ways, nothing the schema cannot say. */
const schema = buildSchema(typeDefs);
const enumType = (name: string) => schema.getType(name) as GraphQLEnumType;
const valuesOf = <T extends string>(name: string) =>
  enumType(name)
    .getValues()
    .map((v) => v.name as T);

const jobConfig = (overrides: Partial<JobConfig> = {}): JobConfig => ({
  ...DEFAULT_TRAINING_CONFIG,
  validationFraction: 0.2,
  testFraction: 0.2,
  ...overrides,
});

describe('the GraphQL enums and the ML names', () => {
  it('map every architecture of the schema to one the ML core builds, and back, covering all of them', () => {
    const schemaValues = valuesOf<Architecture>('Architecture');
    const ml = schemaValues.map(architectureToMl);
    expect([...ml].sort()).toEqual([...ARCHITECTURES].sort());
    for (const value of schemaValues) expect(architectureFromMl(architectureToMl(value))).toBe(value);
  });

  it('map every fusion both ways, covering every kind the ML core fuses', () => {
    const schemaValues = valuesOf<Fusion>('Fusion');
    expect(schemaValues.map(fusionToMl).sort()).toEqual([...FUSION_KINDS].sort());
    for (const value of schemaValues) expect(fusionFromMl(fusionToMl(value))).toBe(value);
    // Configs and cards from before fusion existed served the network alone.
    expect(fusionFromMl(undefined)).toBe('NONE');
  });

  it('map every class balance to a distinct value the training config accepts', () => {
    const ml = valuesOf<ClassBalance>('ClassBalance').map(balanceToMl);
    expect(new Set(ml).size).toBe(ml.length);
    for (const classBalance of ml)
      expect(validateTrainingConfig({ ...DEFAULT_TRAINING_CONFIG, classBalance }).classBalance).toBe(
        classBalance,
      );
  });
});

describe('configToGraphql', () => {
  it('answers a job config in values the schema can serialize', () => {
    for (const architecture of ARCHITECTURES) {
      for (const fusion of FUSION_KINDS) {
        for (const classBalance of ['weights', 'sampling', 'none'] as const) {
          const out = configToGraphql(jobConfig({ architecture, fusion, classBalance }));
          expect(enumType('Architecture').serialize(out.architecture)).toBe(out.architecture);
          expect(enumType('Fusion').serialize(out.fusion)).toBe(out.fusion);
          expect(enumType('ClassBalance').serialize(out.classBalance)).toBe(out.classBalance);
        }
      }
    }
    expect(configToGraphql(jobConfig())).toMatchObject({
      architecture: 'LYMPHONET',
      classBalance: 'WEIGHTS',
      fusion: 'TEXTURE_BLEND',
      colourJitter: DEFAULT_TRAINING_CONFIG.colourJitter,
      testTimeAugmentation: DEFAULT_TRAINING_CONFIG.testTimeAugmentation,
      validationFraction: 0.2,
    });
  });

  it('reads a job written before the recipe levers existed as one that used none of them', () => {
    const old = jobConfig();
    const legacy = { ...old } as Partial<JobConfig>;
    delete legacy.colourJitter;
    delete legacy.testTimeAugmentation;
    delete legacy.fusion;
    expect(configToGraphql(legacy as JobConfig)).toMatchObject({
      colourJitter: 0,
      testTimeAugmentation: false,
      fusion: 'NONE',
    });
  });
});
