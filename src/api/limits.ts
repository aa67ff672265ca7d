import {
  GraphQLError,
  Kind,
  Lexer,
  Source,
  TokenKind,
  type ASTVisitor,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
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

/** What one selection set (an operation's, or a fragment's) could make the server do. */
export interface SelectionMeasure {
  /** Levels of fields with selections below this set: `{ a { b } }` is 1, `{ a }` is 0. */
  depth: number;
  cost: number;
  aliases: number;
}

/**
 * Costs saturate here: a document whose fragments each spread the next one twice doubles its cost per
 * fragment, and past 2^1024 a double is Infinity. Anything at this bound is far over any limit.
 */
const COST_CEILING = 1e15;
const saturate = (n: number) => Math.min(n, COST_CEILING);

/**
 * Measures the operations of a document: depth, aliases and cost. Each fragment is measured once and
 * its measure reused at every spread, so the work is linear in the size of the document however often
 * fragments spread each other (a fragment that spreads the next one twice, forty deep, is 2^40 fields
 * if expanded, but forty fragments to measure). A fragment that spreads itself, directly or not,
 * counts as empty here; graphql's NoFragmentCycles rule reports it.
 *
 * `visited` counts the selections looked at, so a test can check that the work stays bounded.
 */
export function measureDocument(
  document: DocumentNode,
  limits: Pick<QueryLimits, 'defaultPage' | 'maxPage'>,
): { operations: Map<OperationDefinitionNode, SelectionMeasure>; visited: number } {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) {
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  }
  const measured = new Map<string, SelectionMeasure>();
  const inProgress = new Set<string>();
  let visited = 0;

  const intArg = (field: FieldNode, name: string): number | null => {
    const arg = field.arguments?.find((a) => a.name.value === name);
    if (!arg) return null;
    const value: ValueNode = arg.value;
    if (value.kind === Kind.INT) return Number(value.value);
    // Variables are not known yet at validation: price them at the largest page they could ask for.
    if (value.kind === Kind.VARIABLE) return limits.maxPage;
    return null;
  };

  const fragment = (name: string): SelectionMeasure => {
    const known = measured.get(name);
    if (known) return known;
    const definition = fragments.get(name);
    // Unknown or cyclic: graphql's own rules (KnownFragmentNames, NoFragmentCycles) report it.
    if (!definition || inProgress.has(name)) return { depth: 0, cost: 0, aliases: 0 };
    inProgress.add(name);
    const measure = selectionSet(definition.selectionSet);
    inProgress.delete(name);
    measured.set(name, measure);
    return measure;
  };

  // Recursion depth is bounded by the document's nesting and its chain of fragments, both bounded by
  // checkDocumentShape before the document is parsed.
  const selectionSet = (set: SelectionSetNode): SelectionMeasure => {
    let depth = 0;
    let cost = 0;
    let aliases = 0;
    for (const selection of set.selections) {
      visited += 1;
      let child: SelectionMeasure;
      if (selection.kind === Kind.FIELD) {
        if (selection.alias) aliases += 1;
        const name = selection.name.value;
        let own = name === 'predict' ? 10 : 1;
        if (name === 'predictBatch') {
          const inputs = selection.arguments?.find((a) => a.name.value === 'inputs')?.value;
          own = 10 * (inputs?.kind === Kind.LIST ? inputs.values.length : limits.maxPage);
        }
        if (!selection.selectionSet) {
          cost += own;
          continue;
        }
        const below = selectionSet(selection.selectionSet);
        const first = intArg(selection, 'first');
        const multiplier =
          first !== null || selection.arguments?.some((a) => a.name.value === 'after')
            ? Math.min(first ?? limits.defaultPage, limits.maxPage)
            : 1;
        // __Type.ofType unwraps a list or non-null type: a chain as long as the wrapping, linear in size.
        // The standard introspection query (every explorer's first request) nests it 7 times and would be
        // 15 levels deep; not counting it leaves 8, while fields { type { fields ... } }, which does grow,
        // still counts every level.
        const levels = name === 'ofType' ? 0 : 1;
        child = { depth: below.depth + levels, cost: own + multiplier * below.cost, aliases: below.aliases };
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        child = selectionSet(selection.selectionSet);
      } else {
        child = fragment(selection.name.value);
      }
      depth = Math.max(depth, child.depth);
      cost = saturate(cost + child.cost);
      aliases = saturate(aliases + child.aliases);
    }
    return { depth, cost, aliases };
  };

  const operations = new Map<OperationDefinitionNode, SelectionMeasure>();
  for (const def of document.definitions) {
    if (def.kind === Kind.OPERATION_DEFINITION) operations.set(def, selectionSet(def.selectionSet));
  }
  return { operations, visited };
}

const amount = (n: number) => (n >= COST_CEILING ? `more than ${COST_CEILING.toExponential()}` : String(n));

/**
 * One validation rule for depth, aliases and cost, applied before any resolver runs (and so before the
 * API key is looked up), so an over-deep or over-wide query costs us a parse and nothing else. Cost:
 * every field costs 1, and a connection's subtree is multiplied by its `first` (or the default page
 * size), so a nested page of pages is priced by what it could return. Mutations that do ML work cost
 * extra: predict 10, predictBatch 10 per image. Fragments count at every spread, measured once each.
 */
export function queryLimitsRule(limits: QueryLimits) {
  return (context: ValidationContext): ASTVisitor => {
    const fail = (message: string) =>
      context.reportError(new GraphQLError(message, { extensions: { code: ErrorCode.BAD_USER_INPUT } }));
    const { operations } = measureDocument(context.getDocument(), limits);
    return {
      OperationDefinition(node) {
        const measure = operations.get(node);
        if (!measure) return;
        const depth = measure.depth + 1;
        if (depth > limits.depth) fail(`The query is ${depth} levels deep; the limit is ${limits.depth}.`);
        if (measure.aliases > limits.aliases)
          fail(`The query uses ${amount(measure.aliases)} aliases; the limit is ${limits.aliases}.`);
        if (measure.cost > limits.cost)
          fail(
            `The query costs ${amount(measure.cost)}; the limit per operation is ${limits.cost}. Ask for smaller pages.`,
          );
      },
    };
  };
}

/**
 * Brackets of any kind open at once. The depth limit (10 by default) allows 10 levels of selections;
 * arguments and input objects add a few more. 64 leaves room for any honest query.
 */
export const QUERY_NESTING = 64;

export interface DocumentShapeLimits {
  /** Tokens in the document (names, punctuation, values; comments do not count). */
  tokens: number;
  /** Brackets of any kind (`{`, `[`, `(`) open at once. */
  nesting: number;
}

/**
 * Checks a query's text before graphql parses it: at most `tokens` tokens, and brackets nested at most
 * `nesting` deep. graphql-js parses recursively, so `{a{a{a...` 5,000 deep overflows the stack inside
 * the parser; the lexer used here is a loop, so this check costs one pass over the text and cannot
 * overflow. It also bounds every later recursive walk of the document (validation, the cost rule).
 *
 * Returns the reason to refuse, or null. Text the lexer cannot read is left to the parser, which
 * reports it as a syntax error. Never throws.
 */
export function checkDocumentShape(query: string, limits: DocumentShapeLimits): string | null {
  let lexer: Lexer;
  try {
    lexer = new Lexer(new Source(query));
  } catch {
    return null;
  }
  let tokens = 0;
  let open = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      tokens += 1;
      if (tokens > limits.tokens)
        return `The query has more than ${limits.tokens} tokens; send a smaller document.`;
      if (
        token.kind === TokenKind.BRACE_L ||
        token.kind === TokenKind.BRACKET_L ||
        token.kind === TokenKind.PAREN_L
      ) {
        open += 1;
        if (open > limits.nesting)
          return `The query nests brackets more than ${limits.nesting} deep; the limit is ${limits.nesting}.`;
      } else if (
        token.kind === TokenKind.BRACE_R ||
        token.kind === TokenKind.BRACKET_R ||
        token.kind === TokenKind.PAREN_R
      ) {
        open = Math.max(0, open - 1);
      }
    }
  } catch {
    return null; // a syntax error: the parser reports it with its position
  }
  return null;
}

/** JSON values (objects, arrays, strings, numbers, ...) in a request's variables, all levels together. */
export const VARIABLE_VALUES = 10_000;

/**
 * Checks the variables of a request before graphql coerces them: at most `values` JSON values in all,
 * nested at most `nesting` deep. graphql coerces every element of a list variable before any resolver
 * can refuse it: a 4.5 MB body holding 1.5 million `{}` as the inputs of `predictBatch` kept the process
 * busy for over a minute, with no API key. An explicit stack, so nothing here recurses.
 *
 * Returns the reason to refuse, or null. Never throws.
 */
export function checkVariablesShape(
  variables: unknown,
  limits: { values: number; nesting: number },
): string | null {
  const pending: Array<{ value: unknown; depth: number }> = [{ value: variables, depth: 0 }];
  let values = 0;
  while (pending.length > 0) {
    const { value, depth } = pending.pop()!;
    values += 1;
    if (values > limits.values) {
      return `The variables hold more than ${limits.values} values; send fewer (a batch holds at most a few dozen images).`;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= limits.nesting) return `The variables nest more than ${limits.nesting} deep.`;
    const children = Array.isArray(value) ? value : Object.values(value);
    // Refuse a long list without stacking all its elements first.
    if (values + children.length > limits.values) {
      return `The variables hold more than ${limits.values} values; send fewer (a batch holds at most a few dozen images).`;
    }
    for (const child of children) pending.push({ value: child, depth: depth + 1 });
  }
  return null;
}
