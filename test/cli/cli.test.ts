import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = path.join(__dirname, '..', '..', 'bin', 'lymphoscope.js');
const SAMPLE = path.join(__dirname, '..', '..', 'data', 'cnmc-sample');
const cli = (...args: string[]) =>
  run(process.execPath, [BIN, ...args], { maxBuffer: 10 * 1024 * 1024, env: { ...process.env, CI: 'true' } });

describe('the lymphoscope command line', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-cli-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('trains a model directory from a C-NMC folder: decisions out of fold, subject-grouped test metrics', async () => {
    const out = path.join(dir, 'model');
    const { stdout } = await cli(
      'train',
      '--data',
      SAMPLE,
      '--out',
      out,
      '--arch',
      'vanilla',
      '--input-size',
      '32',
      '--epochs',
      '2',
      '--folds',
      '3',
      '--seeds',
      '2',
      '--test',
      '0.2',
    );
    expect(stdout).toMatch(
      /\d+ training cells of \d+ subjects in 3 subject-grouped folds x 2 seeds, test \d+/,
    );
    const card = JSON.parse(await readFile(path.join(out, 'card.json'), 'utf8'));
    expect(card).toMatchObject({ architecture: 'vanilla', inputSize: 32, trainedOnBackend: 'wasm' });
    expect(card.trainingRuntime).toBe(
      process.env.LYMPHOSCOPE_TRAIN_RUNTIME === 'tfjs' ? 'tfjs' : 'onnxruntime',
    );
    expect(card.testMetrics.n).toBeGreaterThan(0);
    expect(card.history).toHaveLength(2);
    expect(card.threshold).toBeGreaterThanOrEqual(0);
    expect(card.threshold).toBeLessThanOrEqual(1);
    // Threshold and band come from the out-of-fold scores of both seeds, every training cell scored.
    expect(card.decisions).toMatchObject({ folds: 3, seeds: [1, 2], threshold: card.threshold });
    expect(card.decisions.cells + card.testMetrics.n).toBe(63);
    expect(card.reviewLow).toBe(card.decisions.reviewLow);
    expect(card.reviewHigh).toBe(card.threshold);
    expect(card.decisions.guarantee.blasts).toBe(card.decisions.blasts);
    expect(card.trainingImageSha256).toHaveLength(card.decisions.cells);
    expect([...card.trainingImageSha256].sort()).toEqual(card.trainingImageSha256);

    const evaluated = await cli('evaluate', '--model', out, '--data', SAMPLE, '--json');
    const summary = JSON.parse(evaluated.stdout.trim().split('\n').pop()!);
    for (const key of [
      'n',
      'accuracy',
      'balancedAccuracy',
      'sensitivity',
      'specificity',
      'f1',
      'weightedF1',
      'rocAuc',
      'threshold',
    ]) {
      expect(summary).toHaveProperty(key);
    }
    expect(summary.n).toBe(63);
    expect(summary.threshold).toBe(card.threshold);
  }, 300_000);

  it('evaluates and predicts with the bundled demo model when no --model is given', async () => {
    const { stdout } = await cli('evaluate', '--data', SAMPLE, '--json');
    const summary = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(summary.n).toBe(63);
    expect(summary.rocAuc).toBeGreaterThanOrEqual(0);

    const predicted = await cli(
      'predict',
      '--json',
      path.join(SAMPLE, 'all', 'UID_11_1_1_all.bmp'),
      path.join(SAMPLE, 'hem', 'UID_H10_47_2_hem.bmp'),
    );
    const rows = predicted.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(['ALL', 'NORMAL']).toContain(row.label);
      expect(row.probabilityAll).toBeGreaterThanOrEqual(0);
      expect(row.probabilityAll).toBeLessThanOrEqual(1);
    }
  }, 180_000);

  it('refuses bad flags with a message and a non-zero status', async () => {
    await expect(cli('train', '--data', SAMPLE)).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('Usage'),
    });
    await expect(cli('train', '--data', SAMPLE, '--out', dir, '--arch', 'resnet')).rejects.toMatchObject({
      stderr: expect.stringContaining('--arch'),
    });
    await expect(cli('nonsense')).rejects.toMatchObject({ code: 2 });
  });
});
