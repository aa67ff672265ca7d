import { parseArgs } from 'node:util';
import { version } from '../../package.json';
import { loadMlSettings } from '../config';
import { configureMl } from '../ml/settings';
import { bootstrapCommand } from './bootstrap';
import { cvCommand, evaluateCommand, predictCommand, trainCommand, type Flags } from './commands';
import { commandUsage, COMMANDS, usage } from './help';
import { uploadFolder } from './upload';

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`lymphoscope ${version}\n`);
    return 0;
  }
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    const topic = command === 'help' ? rest[0] : undefined;
    const text = topic ? commandUsage(topic) : usage();
    if (text === null) {
      process.stderr.write(`Unknown command: ${topic}\n${usage()}\n`);
      return 2;
    }
    process.stdout.write(text + '\n');
    return command === undefined ? 2 : 0;
  }
  if (!(command in COMMANDS)) {
    process.stderr.write(`Unknown command: ${command}\n${usage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(commandUsage(command) + '\n');
    return 0;
  }
  const text = { type: 'string' } as const;
  const flag = { type: 'boolean' } as const;
  const parseFlags = () =>
    parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        data: text,
        out: text,
        model: text,
        arch: text,
        'input-size': text,
        epochs: text,
        'batch-size': text,
        lr: text,
        patience: text,
        'class-balance': text,
        seed: text,
        validation: text,
        test: text,
        folds: text,
        repeats: text,
        seeds: text,
        shifts: text,
        recipe: text,
        'cv-summary': text,
        'colour-jitter': text,
        fusion: text,
        augment: flag,
        'no-augment': flag,
        'bn-recompute': flag,
        'no-bn-recompute': flag,
        tta: flag,
        'no-tta': flag,
        json: flag,
        dataset: text,
        'api-url': text,
        key: text,
        stage: text,
        region: text,
        bucket: text,
        'api-key': text,
        stack: text,
        'new-admin-key': flag,
        'no-smoke': flag,
      },
    });
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags();
  } catch (error) {
    // node:util's own message ("Unknown option '--x'. To specify a positional argument...") plus where to look.
    process.stderr.write(
      `${(error as Error).message.split('. ')[0]}.\nRun \`lymphoscope ${command} --help\` for its flags.\n`,
    );
    return 2;
  }
  const { values, positionals } = parsed;
  const flags = values as Flags;
  // The ML variables of the environment (LYMPHOSCOPE_ML_BACKEND, LYMPHOSCOPE_TRAIN_RUNTIME, ...), validated.
  configureMl(loadMlSettings());
  switch (command) {
    case 'train':
      await trainCommand(flags);
      return 0;
    case 'evaluate':
      await evaluateCommand(flags);
      return 0;
    case 'predict':
      await predictCommand(flags, positionals);
      return 0;
    case 'cv':
      await cvCommand(flags);
      return 0;
    case 'bootstrap':
      return bootstrapCommand(flags);
    case 'upload': {
      const apiKey = String(flags.key ?? process.env.LYMPHOSCOPE_KEY ?? '');
      if (positionals.length !== 1 || !flags.dataset || !apiKey) {
        process.stderr.write(`${commandUsage('upload')}\n`);
        return 2;
      }
      const report = await uploadFolder({
        folder: positionals[0],
        datasetId: String(flags.dataset),
        apiUrl: String(flags['api-url'] ?? process.env.LYMPHOSCOPE_URL ?? 'http://localhost:4000/graphql'),
        apiKey,
      });
      return report.rejected.length ? 1 : 0;
    }
    default:
      process.stderr.write(`Unknown command: ${command}\n${usage()}\n`);
      return 2;
  }
}

/** Runs the CLI with the process's arguments and exits with its status. */
export function run(): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) run();
