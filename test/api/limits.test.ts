import { parse } from 'graphql';
import { checkDocumentShape, checkVariablesShape, measureDocument } from '../../src/api/limits';

const LIMITS = { defaultPage: 20, maxPage: 100 };

/** A document whose fragments each spread the next one twice: 2^n leaves if expanded. */
function fanOut(n: number): string {
  let doc = 'query { ...F0 }\n';
  for (let i = 0; i < n; i++) doc += `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }\n`;
  return `${doc}fragment F${n} on Query { health { status } }\n`;
}

describe('measureDocument', () => {
  it('measures each fragment once: fan-out costs work linear in the document', () => {
    const doc = parse(fanOut(40));
    const { operations, visited } = measureDocument(doc, LIMITS);
    // One spread in the operation, two per fragment, then `health` and `status`.
    expect(visited).toBe(1 + 2 * 40 + 2);
    const [measure] = [...operations.values()];
    // Each of 2^40 copies of `health { status }` costs 2.
    expect(measure.cost).toBe(2 * 2 ** 40);
    expect(measure.depth).toBe(1);
  });

  it('saturates a cost past what a double holds, instead of Infinity or NaN', () => {
    const { operations } = measureDocument(parse(fanOut(1200)), LIMITS);
    const [measure] = [...operations.values()];
    expect(measure.cost).toBe(1e15);
  });

  it('counts aliases at every spread and depth through fragments', () => {
    const doc = parse(
      '{ ...A ...A } fragment A on Query { a: health { status } b: health { ...B } } fragment B on Health { status }',
    );
    const [measure] = [...measureDocument(doc, LIMITS).operations.values()];
    expect(measure.aliases).toBe(4);
    expect(measure.depth).toBe(1);
    expect(measure.cost).toBe(8);
  });

  it('prices a connection by its page and a cycle as empty (NoFragmentCycles reports it)', () => {
    const paged = parse('{ datasets(first: 50) { edges { cursor } } }');
    expect([...measureDocument(paged, LIMITS).operations.values()][0].cost).toBe(1 + 50 * 2);
    const cyclic = parse(
      '{ ...A } fragment A on Query { health { status } ...B } fragment B on Query { ...A }',
    );
    const { operations, visited } = measureDocument(cyclic, LIMITS);
    expect([...operations.values()][0].cost).toBe(2);
    expect(visited).toBeLessThan(10);
  });
});

describe('checkDocumentShape', () => {
  const shape = { tokens: 5000, nesting: 64 };

  it('refuses brackets nested 5,000 deep without recursing (the parser would overflow its stack)', () => {
    const deep = '{' + 'a{'.repeat(5000) + 'b' + '}'.repeat(5001);
    expect(checkDocumentShape(deep, shape)).toMatch(/nests brackets more than 64 deep/);
    const deepList = `{ f(x: ${'['.repeat(5000)}1${']'.repeat(5000)}) }`;
    expect(checkDocumentShape(deepList, shape)).toMatch(/more than 64 deep/);
  });

  it('refuses too many tokens, and lets an honest query and a syntax error through to the parser', () => {
    expect(checkDocumentShape(`{ ${'health '.repeat(6000)}}`, shape)).toMatch(/more than 5000 tokens/);
    expect(checkDocumentShape('{ health { status } }', shape)).toBeNull();
    expect(checkDocumentShape('{ health { status } } "unterminated', shape)).toBeNull();
    // Comments are not tokens.
    expect(checkDocumentShape(`# ${'x'.repeat(100000)}\n{ health { status } }`, shape)).toBeNull();
  });
});

describe('checkVariablesShape', () => {
  const shape = { values: 10_000, nesting: 64 };

  it('refuses a long list before looking at its elements, and deep nesting without recursing', () => {
    expect(checkVariablesShape({ inputs: Array(1_500_000).fill({}) }, shape)).toMatch(
      /more than 10000 values/,
    );
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    expect(checkVariablesShape({ input: deep }, shape)).toBe('The variables nest more than 64 deep.');
  });

  it('lets a full batch of images and absent variables through', () => {
    const batch = Array.from({ length: 32 }, () => ({ imageBase64: 'Qk0=', explain: true }));
    expect(checkVariablesShape({ inputs: batch }, shape)).toBeNull();
    expect(checkVariablesShape(undefined, shape)).toBeNull();
    expect(checkVariablesShape(null, shape)).toBeNull();
  });
});
