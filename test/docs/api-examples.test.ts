import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, parse, print, validate, Kind, type OperationDefinitionNode } from 'graphql';
import { sampleImages } from '../helpers/sample';
import { startE2eStack, type E2eStack } from '../helpers/e2e-stack';

/**
 * docs/API.md is executable: this test runs its shell blocks top to bottom in one bash session, as a
 * reader would paste them, against a local stack, and checks each answer. Each example is a ```graphql
 * block, a ```json block of variables and a ```sh block with the same request through curl; a hidden
 * `<!-- example: ... -->` comment after a block tells the test what a reader would do by hand:
 *   save NAME=path.in.data    keep a value from the answer in the shell variable NAME
 *   wait path.in.data=VALUE   repeat the request until the answer says so (a job finishing)
 *   expect CODE               the example shows an error with this extensions.code
 *   check path.in.data=VALUE  what the text around the example says the answer holds ($NAME: a saved value)
 *   skip                      do not run this block (it sets up what the test sets up itself)
 */
const ROOT = path.join(__dirname, '..', '..');
const DOC = readFileSync(path.join(ROOT, 'docs', 'API.md'), 'utf8');
const SCHEMA = buildSchema(readFileSync(path.join(ROOT, 'schema.graphql'), 'utf8'));

interface Block {
  lang: string;
  content: string;
  line: number;
  directives: string[];
}

interface Step {
  line: number;
  shell: string;
  directives: string[];
  /** Present for a GraphQL example: its operation and variables as the readable blocks show them. */
  example?: { query: string; variables: Record<string, unknown>; name: string };
}

function parseBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\w*)\s*$/.exec(lines[i]);
    if (fence) {
      const start = i;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]);
      if (i === lines.length) throw new Error(`docs/API.md:${start + 1}: unclosed code block`);
      blocks.push({ lang: fence[1], content: body.join('\n'), line: start + 1, directives: [] });
      continue;
    }
    const comment = /^<!-- example: (.*) -->$/.exec(lines[i].trim());
    if (comment) {
      if (!blocks.length) throw new Error(`docs/API.md:${i + 1}: an example directive before any block`);
      blocks[blocks.length - 1].directives.push(...comment[1].split(';').map((d) => d.trim()));
    }
  }
  return blocks;
}

function stepsOf(blocks: Block[]): Step[] {
  const steps: Step[] = [];
  blocks.forEach((block, i) => {
    if (block.lang === 'graphql') {
      const [variables, shell] = [blocks[i + 1], blocks[i + 2]];
      if (variables?.lang !== 'json' || shell?.lang !== 'sh') {
        throw new Error(
          `docs/API.md:${block.line}: a graphql block must be followed by a json and a sh block`,
        );
      }
    }
    if (
      block.lang !== 'sh' ||
      block.directives.includes('skip') ||
      block.directives.some((d) => d.startsWith('skip '))
    )
      return;
    const [query, variables] = [blocks[i - 2], blocks[i - 1]];
    if (query?.lang === 'graphql' && variables?.lang === 'json') {
      const operation = parse(query.content).definitions[0] as OperationDefinitionNode;
      steps.push({
        line: block.line,
        shell: block.content,
        directives: block.directives,
        example: {
          query: query.content,
          variables: JSON.parse(variables.content),
          name: operation.name?.value ?? '(anonymous)',
        },
      });
    } else {
      steps.push({ line: block.line, shell: block.content, directives: block.directives });
    }
  });
  return steps;
}

/** The body line of an example's curl block: the query on one line, GraphQL's `$` escaped for the shell. */
function curlBody(query: string, variables: Record<string, unknown>): string {
  const oneLine = JSON.stringify(query.replace(/\s+/g, ' ').trim()).replace(/\$/g, '\\$');
  return `{"query":${oneLine},"variables":${JSON.stringify(variables)}}`;
}

const STEPS = stepsOf(parseBlocks(DOC));
const EXAMPLES = STEPS.filter((s) => s.example);

/** One bash process for the whole page, so variables set by one block are there for the next. */
class Session {
  private output = '';
  private waiting: (() => void) | null = null;
  private count = 0;

  constructor(private readonly bash: ChildProcessWithoutNullStreams) {
    bash.stdout.on('data', (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
      this.waiting?.();
    });
    bash.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  }

  async run(script: string, timeoutMs = 60_000): Promise<{ stdout: string; exitCode: number }> {
    const marker = `__api_md_step_${++this.count}__`;
    this.output = '';
    this.bash.stdin.write(`${script}\nprintf '\\n${marker} %s\\n' "$?"\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = new RegExp(`\\n${marker} (\\d+)\\n`).exec(this.output);
      if (match) return { stdout: this.output.slice(0, match.index), exitCode: Number(match[1]) };
      if (Date.now() > deadline)
        throw new Error(`The shell block did not finish in ${timeoutMs} ms:\n${script.slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 200);
      });
    }
  }
}

const at = (data: unknown, dotted: string): unknown =>
  dotted.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown> | null)?.[key], data);

describe('docs/API.md', () => {
  it('has a complete example (graphql, json variables, curl) for every query and mutation in the schema', () => {
    const documented = new Set<string>();
    for (const step of EXAMPLES) {
      const operation = parse(step.example!.query).definitions[0] as OperationDefinitionNode;
      for (const selection of operation.selectionSet.selections) {
        if (selection.kind === Kind.FIELD)
          documented.add(`${operation.operation === 'query' ? 'Query' : 'Mutation'}.${selection.name.value}`);
      }
    }
    const required = [
      ...Object.keys(SCHEMA.getQueryType()!.getFields()).map((f) => `Query.${f}`),
      ...Object.keys(SCHEMA.getMutationType()!.getFields()).map((f) => `Mutation.${f}`),
    ];
    expect(required.filter((field) => !documented.has(field))).toEqual([]);
  });

  it.each(EXAMPLES.map((s) => [s.example!.name, s] as const))(
    '%s: the curl body says what the graphql and json blocks say, and is valid',
    (_name, step) => {
      const body = /<<EOF\n([\s\S]*?)\nEOF/.exec(step.shell);
      if (!body) throw new Error(`docs/API.md:${step.line}: the curl block needs a <<EOF body`);
      // The shell would expand $NAME placeholders; unescaped GraphQL variables would vanish, so each must be \$.
      const sent = JSON.parse(body[1].replace(/\\\$/g, '$'));
      expect(body[1].match(/(?<!\\)\$(?=[a-z])/g)).toBeNull();
      expect(print(parse(sent.query))).toBe(print(parse(step.example!.query)));
      expect(sent.variables).toEqual(step.example!.variables);
      expect(validate(SCHEMA, parse(step.example!.query))).toEqual([]);
      // And in the one canonical spelling, so an editor who changes an example can paste this line.
      expect(body[1]).toBe(curlBody(step.example!.query, step.example!.variables));
    },
  );

  describe('run top to bottom against a local stack', () => {
    let e2e: E2eStack;
    let session: Session;
    let bash: ChildProcessWithoutNullStreams;
    const saved = new Map<string, string>();

    beforeAll(async () => {
      e2e = await startE2eStack('docs', { demoModel: true });
      // What the page asks the reader to do with the AWS CLI before importImages.
      for (const image of sampleImages()) {
        await e2e.stack.services.store.put(
          `imports/cnmc-sample/${image.label === 'ALL' ? 'all' : 'hem'}/${image.name}`,
          image.bytes,
        );
      }
      bash = spawn('bash', ['--noprofile', '--norc'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          LYMPHOSCOPE_URL: e2e.stack.url,
          LYMPHOSCOPE_KEY: e2e.adminKey,
        },
      });
      session = new Session(bash);
    }, 120_000);

    afterAll(async () => {
      bash?.stdin.end();
      bash?.kill();
      await e2e?.stop();
    });

    it.each(STEPS.map((s) => [s.example?.name ?? `shell block at line ${s.line}`, s] as const))(
      '%s',
      async (_name, step) => {
        const waitFor = step.directives
          .find((d) => d.startsWith('wait '))
          ?.slice(5)
          .split('=');
        const expected = step.directives.find((d) => d.startsWith('expect '))?.slice(7);
        const deadline = Date.now() + 240_000;
        let answer: { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> } =
          {};
        for (;;) {
          const { stdout, exitCode } = await session.run(step.shell);
          expect({ line: step.line, exitCode }).toEqual({ line: step.line, exitCode: 0 });
          if (!step.example) return;
          answer = JSON.parse(stdout);
          if (!waitFor || String(at(answer.data, waitFor[0])) === waitFor[1] || Date.now() > deadline) break;
          const status = at(answer.data, waitFor[0]);
          if (status === 'FAILED' || status === 'CANCELLED') break;
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
        if (expected) {
          expect(answer.errors?.map((e) => e.extensions?.code)).toEqual([expected]);
          return;
        }
        expect(answer.errors).toBeUndefined();
        expect(answer.data).toBeTruthy();
        if (waitFor) expect(String(at(answer.data, waitFor[0]))).toBe(waitFor[1]);
        for (const directive of step.directives.filter((d) => d.startsWith('check '))) {
          const [dotted, value] = directive.slice(6).split('=');
          const wanted = value.startsWith('$') ? saved.get(value.slice(1)) : value;
          expect({ [dotted]: String(at(answer.data, dotted)) }).toEqual({ [dotted]: wanted });
        }
        for (const directive of step.directives.filter((d) => d.startsWith('save '))) {
          const [name, dotted] = directive.slice(5).split('=');
          const value = at(answer.data, dotted);
          if (typeof value !== 'string' || value.includes("'"))
            throw new Error(`docs/API.md:${step.line}: cannot save ${dotted} (${String(value)})`);
          expect((await session.run(`${name}='${value}'`)).exitCode).toBe(0);
          saved.set(name, value);
        }
      },
      300_000,
    );
  });
});
