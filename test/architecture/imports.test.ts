import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * The import graph of src/ (type-only imports included: a type-only circle is still two modules that
 * cannot be understood apart), read with TypeScript's pre-processor, so the check takes well under a
 * second. DESIGN.md: imports point down only; nothing outside src/local imports it.
 */
const SRC = path.join(__dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return entry.endsWith('.ts') && !entry.endsWith('.d.ts') ? [full] : [];
  });
}

function resolve(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const base = path.resolve(path.dirname(from), specifier);
  if (!base.startsWith(SRC)) return null; // package.json and the like
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts'), base]) {
    if (candidate.endsWith('.ts') && existsSync(candidate)) return candidate;
  }
  return null;
}

/** Module (path relative to src/) to the src/ modules it imports or re-exports from. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((f) => resolve(file, f.fileName))
      .filter((t): t is string => t !== null)
      .map((t) => path.relative(SRC, t));
    graph.set(path.relative(SRC, file), [...new Set(targets)]);
  }
  return graph;
}

/** Strongly connected components with more than one module (or a module importing itself): Tarjan. */
function circles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)?.includes(node)) found.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

describe('the import graph of src/', () => {
  const graph = importGraph();

  it('is read (a walk that finds nothing proves nothing)', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get('services/index.ts')).toContain('services/auth.ts');
  });

  it('has no circles', () => {
    expect(circles(graph)).toEqual([]);
  });

  it('finds a circle when there is one', () => {
    const withCircle = new Map(graph);
    withCircle.set('storage/layout.ts', [...(graph.get('storage/layout.ts') ?? []), 'services/index.ts']);
    expect(circles(withCircle).length).toBeGreaterThan(0);
  });

  it('keeps src/local out of everything else, and src/ml free of AWS, GraphQL and the layers above', () => {
    const offending: string[] = [];
    for (const [module, targets] of graph) {
      for (const target of targets) {
        if (target.startsWith('local/') && !module.startsWith('local/'))
          offending.push(`${module} -> ${target}`);
        if (
          module.startsWith('ml/') &&
          /^(services|resolvers|handlers|api|dispatch|storage|local|cli)\//.test(target)
        ) {
          offending.push(`${module} -> ${target}`);
        }
      }
    }
    for (const file of sourceFiles(path.join(SRC, 'ml'))) {
      const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      for (const { fileName } of importedFiles) {
        if (/^(@aws-sdk|@smithy|graphql|@apollo)/.test(fileName))
          offending.push(`${path.relative(SRC, file)} -> ${fileName}`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('keeps the environment out of src/ml: its settings come in through configureMl', () => {
    const readers = sourceFiles(path.join(SRC, 'ml'))
      .filter((file) => readsEnvironment(readFileSync(file, 'utf8')))
      .map((file) => path.relative(SRC, file));
    expect(readers).toEqual([]);
    const importsConfig = [...graph]
      .filter(([module, targets]) => module.startsWith('ml/') && targets.includes('config.ts'))
      .map(([module]) => module);
    expect(importsConfig).toEqual([]);
  });

  it('finds an environment read when there is one', () => {
    expect(readsEnvironment("const backend = process.env.LYMPHOSCOPE_ML_BACKEND ?? 'auto';")).toBe(true);
    expect(readsEnvironment("const { LYMPHOSCOPE_ONNX } = process['env'];")).toBe(true);
    expect(readsEnvironment("import { env } from 'node:process';")).toBe(true);
    expect(readsEnvironment("const backend = mlSettings().backend; // 'auto' unless configured")).toBe(false);
  });
});

/** Whether TypeScript source reads the process environment (process.env, process['env'], node:process's env). */
function readsEnvironment(source: string): boolean {
  return (
    /\bprocess\s*(\.\s*env\b|\[\s*['"`]env['"`]\s*\])/.test(source) ||
    /import\s*\{[^}]*\benv\b[^}]*\}\s*from\s*['"](node:)?process['"]/.test(source)
  );
}
