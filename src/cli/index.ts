import { parseArgs } from 'node:util';
import { LAB_SHIFTS } from '../ml/image/lab-shift';
import { cvCommand, evaluateCommand, predictCommand, trainCommand, type Flags } from './commands';

const USAGE = `Usage: lymphoscope <command> [flags]

Commands:
  train     --data <dir> --out <dir> [training flags] [--folds 5] [--seeds 3] [--test 0]
            [--cv-summary <file>]   put a cv run of the same recipe (its output) into the card
            decisions from out-of-fold scores of k subject-grouped folds per seed (docs/ML.md)
  evaluate  [--model <dir>] --data <dir> [--json] [--tta]     (no --model: the bundled demo model)
  predict   [--model <dir>] [--json] <image>...
  cv        --data <dir> [--folds 5] [--repeats 1] [--shifts all|${LAB_SHIFTS.join(',')}] [--json]
            [training flags]   subject-grouped cross-validation; the last line is a JSON summary

Training flags (defaults: the recipe in DEFAULT_TRAINING_CONFIG, see docs/ML.md):
  --recipe default|plain   plain: every lever below off
  --arch lymphonet|seed-2x2x1x1|vanilla|majority  --input-size N  --epochs N  --batch-size N  --lr X
  --patience N  --class-balance weights|sampling|none  --seed N  --augment/--no-augment
  --colour-jitter X (0-1)  --bn-recompute/--no-bn-recompute  --tta/--no-tta  --fusion none|morphology-blend|morphology-stack

<dir> holds all/ (ALL blasts) and hem/ (normal cells), as in C-NMC 2019.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const text = { type: 'string' } as const;
  const flag = { type: 'boolean' } as const;
  const { values, positionals } = parseArgs({
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
    },
  });
  const flags = values as Flags;
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
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE + '\n');
      return command ? 0 : 2;
    default:
      process.stderr.write(`Unknown command: ${command}\n${USAGE}\n`);
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
