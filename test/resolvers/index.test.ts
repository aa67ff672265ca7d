import { buildSchema, isObjectType, type GraphQLObjectType } from 'graphql';
import { typeDefs } from '../../src/generated/schema';
import { resolvers } from '../../src/resolvers';
import { accessResolvers } from '../../src/resolvers/access';
import { dataResolvers } from '../../src/resolvers/data';
import { datasetResolvers } from '../../src/resolvers/datasets';
import { healthResolvers } from '../../src/resolvers/health';
import { modelResolvers } from '../../src/resolvers/models';
import { predictionResolvers } from '../../src/resolvers/predictions';
import { scoringResolvers } from '../../src/resolvers/scoring';
import { trainingResolvers } from '../../src/resolvers/training';

/** The merged resolver map Apollo serves, against the schema it serves. */
const schema = buildSchema(typeDefs);
const DOMAINS = {
  access: accessResolvers,
  data: dataResolvers,
  datasets: datasetResolvers,
  health: healthResolvers,
  models: modelResolvers,
  predictions: predictionResolvers,
  scoring: scoringResolvers,
  training: trainingResolvers,
};
const fieldsOf = (map: object) =>
  Object.entries(map).flatMap(([type, fields]) => Object.keys(fields as object).map((f) => `${type}.${f}`));

describe('the merged resolvers', () => {
  it("keep every domain's fields: no two domains resolve the same field, so none is silently replaced", () => {
    const owners = new Map<string, string[]>();
    for (const [domain, map] of Object.entries(DOMAINS))
      for (const field of fieldsOf(map)) owners.set(field, [...(owners.get(field) ?? []), domain]);
    const shared = [...owners].filter(([, domains]) => domains.length > 1);
    expect(shared).toEqual([]);
    expect(fieldsOf(resolvers).sort()).toEqual([...owners.keys()].sort());
  });

  it('resolve only types and fields the schema has (scalars aside)', () => {
    const unknown = fieldsOf(resolvers).filter((name) => {
      const [typeName, field] = name.split('.');
      const type = schema.getType(typeName);
      if (!type) return true;
      if (!isObjectType(type)) return false; // a scalar's serialize/parseValue, an enum's internal values
      return !(field in type.getFields());
    });
    expect(unknown).toEqual([]);
  });

  it('answer every query and mutation the schema declares', () => {
    const missing: string[] = [];
    for (const root of [schema.getQueryType(), schema.getMutationType()] as GraphQLObjectType[]) {
      const served = (resolvers as Record<string, Record<string, unknown>>)[root.name] ?? {};
      for (const field of Object.keys(root.getFields()))
        if (!(field in served)) missing.push(`${root.name}.${field}`);
    }
    expect(missing).toEqual([]);
  });
});
