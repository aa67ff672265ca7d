import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { main } from '../../src/cli';
import { DEFAULT_ML_SETTINGS, configureMl, mlSettings } from '../../src/ml/settings';

const run = promisify(execFile);
const BIN = path.join(__dirname, '..', '..', 'bin', 'lymphoscope.js');
const CELL = path.join(__dirname, '..', '..', 'data', 'cnmc-sample', 'all', 'UID_11_1_1_all.bmp');

/** The CLI entry point configures the ML core from the environment, validated, before any command runs. */
describe('lymphoscope main', () => {
  afterEach(() => {
    delete process.env.LYMPHOSCOPE_ONNX_THREADS;
    delete process.env.LYMPHOSCOPE_TRAIN_RUNTIME;
    configureMl(DEFAULT_ML_SETTINGS);
  });

  it("hands the environment's ML settings to the ML core", async () => {
    process.env.LYMPHOSCOPE_ONNX_THREADS = '1';
    process.env.LYMPHOSCOPE_TRAIN_RUNTIME = 'tfjs';
    configureMl(DEFAULT_ML_SETTINGS);
    // A command that fails on its flags, after the configuration is read.
    await expect(main(['predict', '--model', '/nonexistent/model-dir', CELL])).rejects.toThrow();
    expect(mlSettings()).toMatchObject({ onnxThreads: 1, trainingRuntime: 'tfjs' });
  });

  it('stops with the variable named and status 1 when one is wrong, before reading anything', async () => {
    const failed = await run(process.execPath, [BIN, 'predict', '--model', '/nonexistent/model-dir', CELL], {
      env: { ...process.env, LYMPHOSCOPE_TRAIN_RUNTIME: 'gpu' },
    }).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr.trim()).toBe(
      "Invalid configuration: LYMPHOSCOPE_TRAIN_RUNTIME: must be one of 'onnxruntime', 'tfjs', not 'gpu'",
    );
  });
});
