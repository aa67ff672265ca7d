import { buildSchema, getIntrospectionQuery, parse, specifiedRules, validate } from 'graphql';
import { queryLimitsRule } from '../../src/api/limits';
import { typeDefs } from '../../src/generated/schema';

const schema = buildSchema(typeDefs);
const rule = queryLimitsRule({ depth: 10, aliases: 30, cost: 2000, defaultPage: 20, maxPage: 100 });
const errors = (query: string) =>
  validate(schema, parse(query), [...specifiedRules, rule]).map((e) => e.message);

/**
 * Explorers (GraphiQL, Apollo Sandbox) start with the standard introspection query, 15 levels deep
 * through its ofType chain; the depth limit must let it through, and still refuse introspection that
 * nests what grows.
 */
describe('the query limits and introspection', () => {
  it('let the standard introspection query through, with every option explorers use', () => {
    expect(errors(getIntrospectionQuery())).toEqual([]);
    expect(
      errors(
        getIntrospectionQuery({
          descriptions: true,
          specifiedByUrl: true,
          directiveIsRepeatable: true,
          schemaDescription: true,
          inputValueDeprecation: true,
        }),
      ),
    ).toEqual([]);
  });

  it('still count every level of fields { type { fields ... } }', () => {
    const nested =
      '{ __schema { types { fields { type { fields { type { fields { type { fields { type { name } } } } } } } } } } }';
    expect(errors(nested)).toContain('The query is 11 levels deep; the limit is 10.');
  });
});
