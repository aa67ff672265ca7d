import { LAB_SHIFTS } from '../ml/image/lab-shift';

/**
 * What `lymphoscope --help` and `lymphoscope <command> --help` print: one entry per command, so adding a
 * command is one entry here and one case in index.ts.
 */
export interface CommandHelp {
  /** One line for the command list. */
  summary: string;
  usage: string;
  /** The command's own flags, one per line, already aligned. */
  flags: string[];
  /** Does the command take the shared training flags? */
  training?: boolean;
  examples: string[];
}

const TRAINING_FLAGS = `Training flags (defaults: the recipe in DEFAULT_TRAINING_CONFIG, see docs/ML.md):
  --recipe default|plain          plain: every lever below off
  --arch lymphonet|seed-2x2x1x1|vanilla|majority
  --input-size N  --epochs N  --batch-size N  --lr X  --patience N  --seed N
  --class-balance weights|sampling|none
  --augment / --no-augment        flips, rotations, brightness jitter
  --colour-jitter X               hue, saturation and gain jitter, 0 (off) to 1
  --bn-recompute / --no-bn-recompute
  --tta / --no-tta                serve the mean over the 8 flips and quarter turns
  --fusion none|morphology-blend|morphology-stack|texture-blend`;

const FOLDER =
  '<dir> holds all/ (ALL blasts) and hem/ or normal/ (normal cells), as data/cnmc-sample does (C-NMC 2019);\n' +
  'images anywhere else in it are refused.';

export const COMMANDS: Record<string, CommandHelp> = {
  train: {
    summary: 'train a model directory (model.json, weights.bin, card.json) from a folder',
    usage:
      'lymphoscope train --data <dir> --out <dir> [training flags] [--folds 5] [--seeds 3] [--validation 0.2] [--test 0]',
    flags: [
      '--data <dir>          the images (all/, hem/)',
      '--out <dir>           where the model directory is written',
      '--validation X        fraction of subjects held out for validation (default 0.2)',
      '--test X              fraction of subjects held out for test (default 0: every cell is scored out of fold)',
      '--folds N             subject-grouped folds per seed whose out-of-fold scores fit the decisions',
      '                      (calibration, threshold, review band, out-of-domain threshold; default 5)',
      '--seeds N             seeds the folds are repeated with, for their spread (default 3)',
      '--cv-summary <file>   put a cv run of the same recipe (its JSON output) into the card',
    ],
    training: true,
    examples: ['lymphoscope train --data data/cnmc-sample --out /tmp/model --epochs 20'],
  },
  evaluate: {
    summary:
      "a model's metrics on a folder: share of blasts called ALL or sent to review, review and out-of-domain rates",
    usage: 'lymphoscope evaluate [--model <dir>] --data <dir> [--json] [--tta]',
    flags: [
      '--model <dir>         a model directory (default: the bundled demo model, data/demo-model)',
      '--data <dir>          the images (all/, hem/)',
      '--json                one JSON summary line instead of text',
      '--tta                 add test-time augmentation to a card without it',
      '',
      "Warns (and the JSON says overlapWithTraining) when images are in the model's training set",
      '(content hashes in card.trainingImageSha256).',
    ],
    examples: ['lymphoscope evaluate --data data/cnmc-sample'],
  },
  predict: {
    summary: 'classify image files: label, p(ALL), threshold, review state and reasons',
    usage: 'lymphoscope predict [--model <dir>] [--json] <image>...',
    flags: [
      '--model <dir>         a model directory (default: the bundled demo model)',
      '--json                one JSON line per image',
    ],
    examples: ['lymphoscope predict data/cnmc-sample/all/UID_11_1_1_all.bmp'],
  },
  cv: {
    summary: 'subject-grouped cross-validation of a training recipe',
    usage:
      'lymphoscope cv --data <dir> [--folds 5] [--repeats 1] [--shifts all|<names>] [--json] [training flags]',
    flags: [
      '--data <dir>          the images (all/, hem/)',
      '--folds N             folds per repeat (default 5)',
      '--repeats N           repeats with other subject shuffles (default 1)',
      `--shifts all|<list>   also score each fold under lab shifts: ${LAB_SHIFTS.join(', ')}`,
      '--json                the report as JSON (the last line is always a JSON summary)',
    ],
    training: true,
    examples: ['lymphoscope cv --data data/cnmc-sample --folds 5 --epochs 10'],
  },
  bootstrap: {
    summary: 'after `serverless deploy`: first admin key, production model, smoke test',
    usage:
      'lymphoscope bootstrap [--stage dev] [--region R] [--bucket B --api-url URL] [--model <dir>] [--new-admin-key] [--api-key K] [--no-smoke] [--json]',
    flags: [
      '--stage <name>        the deployed stage whose stack outputs name the bucket and API (default dev)',
      "--region <region>     the stack's region (default: the AWS SDK's)",
      '--bucket <name>       the artifact bucket, instead of reading the stack outputs',
      '--api-url <url>       the GraphQL endpoint, instead of reading the stack outputs',
      '--model <dir>         the model directory to publish and promote (default: the demo model)',
      '--new-admin-key       make a new admin key even if one exists (a lost key; revoke the old one)',
      '--api-key <key>       an admin key for the smoke test when no new key is made',
      '--no-smoke            skip the smoke test (health and one prediction)',
      '--json                one JSON summary line',
    ],
    examples: ['lymphoscope bootstrap --stage prod'],
  },
  upload: {
    summary: 'add a folder of images to a dataset through the API (no AWS CLI needed)',
    usage: 'lymphoscope upload <dir> --dataset <id> [--api-url <url>] [--key <key>]',
    flags: [
      '--dataset <id>        the dataset to add to (createDataset makes one)',
      '--api-url <url>       the GraphQL endpoint (default $LYMPHOSCOPE_URL, else http://localhost:4000/graphql)',
      '--key <key>           a scientist or admin API key (default $LYMPHOSCOPE_KEY)',
      '',
      'Images in <dir>/all are labelled ALL, in <dir>/hem NORMAL; other files (MANIFEST.csv, NOTICE.md)',
      'are skipped with a note. Each image goes straight to storage through a presigned upload and is',
      'validated by confirmImageUpload; identical bytes are stored once. Exit status 1 if any was rejected.',
    ],
    examples: ['lymphoscope upload data/cnmc-sample --dataset ds-01k... --key "$LYMPHOSCOPE_KEY"'],
  },
};

/** `lymphoscope --help`. */
export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length)) + 2;
  const list = Object.entries(COMMANDS).map(([name, help]) => `  ${name.padEnd(width)}${help.summary}`);
  return [
    'Usage: lymphoscope <command> [flags]',
    '',
    'Commands:',
    ...list,
    '',
    'Options:',
    '  --help, -h      this help; `lymphoscope <command> --help` for one command',
    '  --version, -V   the version',
    '',
    FOLDER,
  ].join('\n');
}

/** `lymphoscope <command> --help`, or null for an unknown command. */
export function commandUsage(name: string): string | null {
  const help = COMMANDS[name];
  if (!help) return null;
  return [
    `Usage: ${help.usage}`,
    '',
    help.summary.charAt(0).toUpperCase() + help.summary.slice(1) + '.',
    '',
    'Flags:',
    ...help.flags.map((line) => `  ${line}`),
    ...(help.training ? ['', TRAINING_FLAGS] : []),
    '',
    'Example:',
    ...help.examples.map((line) => `  ${line}`),
    ...(help.usage.includes('--data <dir>') ? ['', FOLDER] : []),
  ].join('\n');
}
