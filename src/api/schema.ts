import { buildASTSchema, isObjectType, parse, type GraphQLSchema } from 'graphql';

/** A resolver map as the generated `Resolvers` type allows here: object types' field functions only. */
export type ResolverMap = Record<string, Record<string, unknown>>;

/**
 * The executable schema: the SDL built once, then each resolver set on its field. Apollo, given typeDefs
 * and resolvers, calls graphql-tools' makeExecutableSchema, which validates the SDL again and rebuilds the
 * whole schema to attach resolvers: 85-95 ms of every cold start against 20-30 ms for building it here
 * (docs/PERFORMANCE.md, "Packaged cold start, third pass"). The SDL is checked where it changes: codegen
 * builds it, and test/api/schema.test.ts fails if it is not valid or prints otherwise than
 * graphql-tools' schema. As makeExecutableSchema did, a resolver for a type or field the schema does not
 * have is refused here, at start.
 */
export function executableSchema(typeDefs: string, resolvers: ResolverMap): GraphQLSchema {
  const schema = buildASTSchema(parse(typeDefs, { noLocation: true }), {
    assumeValidSDL: true,
    assumeValid: true,
  });
  for (const [typeName, fields] of Object.entries(resolvers)) {
    const type = schema.getType(typeName);
    if (!isObjectType(type))
      throw new Error(`Resolvers are given for ${typeName}, which is not an object type of the schema.`);
    const schemaFields = type.getFields();
    for (const [fieldName, resolve] of Object.entries(fields)) {
      const field = schemaFields[fieldName];
      if (!field)
        throw new Error(`A resolver is given for ${typeName}.${fieldName}, which the schema does not have.`);
      if (typeof resolve !== 'function')
        throw new Error(`The resolver for ${typeName}.${fieldName} is not a function.`);
      field.resolve = resolve as typeof field.resolve;
    }
  }
  return schema;
}
