import { makeExecutableSchema } from '@graphql-tools/schema';
import { buildSchema, graphql, printSchema, validateSchema } from 'graphql';
import { executableSchema } from '../../src/api/schema';
import { typeDefs } from '../../src/generated/schema';
import { resolvers } from '../../src/resolvers';

describe('executableSchema', () => {
  it('is given a valid SDL: the check it skips at each start holds for the shipped schema', () => {
    // buildSchema without assumeValidSDL throws on an invalid SDL; validateSchema checks the built types.
    expect(validateSchema(buildSchema(typeDefs))).toEqual([]);
  });

  it('builds the schema graphql-tools built before it: the same types, fields, descriptions and directives', () => {
    const ours = executableSchema(typeDefs, resolvers as never);
    const theirs = makeExecutableSchema({ typeDefs, resolvers: resolvers as never });
    expect(printSchema(ours)).toBe(printSchema(theirs));
    expect(printSchema(ours).length).toBeGreaterThan(10_000);
  });

  it("sets every one of the API's resolvers on its field", () => {
    const schema = executableSchema(typeDefs, resolvers as never);
    let count = 0;
    for (const [typeName, fields] of Object.entries(resolvers as Record<string, object>)) {
      for (const [fieldName, resolve] of Object.entries(fields)) {
        const type = schema.getType(typeName) as { getFields(): Record<string, { resolve?: unknown }> };
        expect(type.getFields()[fieldName].resolve).toBe(resolve);
        count++;
      }
    }
    expect(count).toBeGreaterThan(50);
  });

  it('runs the resolvers it set and resolves the others by property', async () => {
    const schema = executableSchema('type Query { cell: Cell } type Cell { id: ID, label: String }', {
      Query: { cell: () => ({ id: 'UID_11_1_1', label: 'all' }) },
      Cell: { label: (cell: { label: string }) => cell.label.toUpperCase() },
    });
    const result = await graphql({ schema, source: '{ cell { id label } }' });
    expect(result).toEqual({ data: { cell: { id: 'UID_11_1_1', label: 'ALL' } } });
  });

  it('refuses a resolver for a type or field the schema lacks, or one that is not a function', () => {
    const sdl = 'scalar DateTime type Query { cell: String }';
    expect(() => executableSchema(sdl, { Cell: { id: () => 1 } })).toThrow(
      'Resolvers are given for Cell, which is not an object type of the schema.',
    );
    expect(() => executableSchema(sdl, { DateTime: { serialize: () => 1 } })).toThrow(
      /DateTime, which is not an object type/,
    );
    expect(() => executableSchema(sdl, { Query: { cel: () => 1 } })).toThrow(
      'A resolver is given for Query.cel, which the schema does not have.',
    );
    expect(() => executableSchema(sdl, { Query: { cell: 'ALL' } })).toThrow(
      'The resolver for Query.cell is not a function.',
    );
  });
});
