import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValueNode,
} from 'graphql';
import { ErrorCode } from '../errors';

export interface QueryLimits {
  depth: number;
  aliases: number;
  cost: number;
  /** Assumed list length when `first` is absent, and the cap a `first` cannot exceed in cost. */
  defaultPage: number;
  maxPage: number;
}

/**
 * One validation rule for depth, aliases and cost, applied before any resolver runs, so an over-deep or
 * over-wide query costs us a parse and nothing else. Cost: every field costs 1, and a connection's
 * subtree is multiplied by its `first` (or the default page size), so a nested page of pages is priced
 * by what it could return. Mutations that do ML work cost extra: predict 10, predictBatch 10 per image.
 */
export function queryLimitsRule(limits: QueryLimits) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const def of context.getDocument().definitions) {
      if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
    }
    const intArg = (field: FieldNode, name: string): number | null => {
      const arg = field.arguments?.find((a) => a.name.value === name);
      if (!arg) return null;
      const value: ValueNode = arg.value;
      if (value.kind === Kind.INT) return Number(value.value);
      // Variables are not known yet at validation: price them at the largest page they could ask for.
      if (value.kind === Kind.VARIABLE) return limits.maxPage;
      return null;
    };

    let aliases = 0;
    const walk = (
      set: SelectionSetNode,
      depth: number,
      seen: Set<string>,
    ): { depth: number; cost: number } => {
      let maxDepth = depth;
      let cost = 0;
      for (const selection of set.selections) {
        if (selection.kind === Kind.FIELD) {
          if (selection.alias) aliases += 1;
          const name = selection.name.value;
          let own = name === 'predict' ? 10 : 1;
          if (name === 'predictBatch') {
            const inputs = selection.arguments?.find((a) => a.name.value === 'inputs')?.value;
            own = 10 * (inputs?.kind === Kind.LIST ? inputs.values.length : limits.maxPage);
          }
          if (selection.selectionSet) {
            // __Type.ofType unwraps a list or non-null type: a chain as long as the wrapping, linear in
            // size. The standard introspection query (every explorer's first request) nests it 7 times and
            // would be 15 levels deep; not counting it leaves 8, while fields { type { fields ... } }, which
            // does grow, still counts every level.
            const child = walk(selection.selectionSet, name === 'ofType' ? depth : depth + 1, seen);
            maxDepth = Math.max(maxDepth, child.depth);
            const first = intArg(selection, 'first');
            const multiplier =
              first !== null || selection.arguments?.some((a) => a.name.value === 'after')
                ? Math.min(first ?? limits.defaultPage, limits.maxPage)
                : 1;
            cost += own + multiplier * child.cost;
          } else {
            cost += own;
          }
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          const child = walk(selection.selectionSet, depth, seen);
          maxDepth = Math.max(maxDepth, child.depth);
          cost += child.cost;
        } else {
          const name = selection.name.value;
          const fragment = fragments.get(name);
          if (!fragment || seen.has(name)) continue; // unknown or cyclic: graphql's own rules report it
          const child = walk(fragment.selectionSet, depth, new Set([...seen, name]));
          maxDepth = Math.max(maxDepth, child.depth);
          cost += child.cost;
        }
      }
      return { depth: maxDepth, cost };
    };

    const fail = (message: string) =>
      context.reportError(new GraphQLError(message, { extensions: { code: ErrorCode.BAD_USER_INPUT } }));

    return {
      OperationDefinition(node) {
        aliases = 0;
        const { depth, cost } = walk(node.selectionSet, 1, new Set());
        if (depth > limits.depth) fail(`The query is ${depth} levels deep; the limit is ${limits.depth}.`);
        if (aliases > limits.aliases)
          fail(`The query uses ${aliases} aliases; the limit is ${limits.aliases}.`);
        if (cost > limits.cost)
          fail(`The query costs ${cost}; the limit per operation is ${limits.cost}. Ask for smaller pages.`);
      },
    };
  };
}
