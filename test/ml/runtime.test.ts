import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initRuntime, liveTensors } from '../../src/ml/runtime';
import { runtimeInfo } from '../../src/ml/runtime-info';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

/**
 * initRuntime in a fresh process (it initialises once per process), configured as an entry point does it:
 * the environment read and validated by loadMlSettings, then configureMl. Reports the outcome as JSON.
 */
function initInChild(
  env: Record<string, string>,
  opts = '{}',
): Promise<{ info?: { backend: string }; error?: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lymphoscope-runtime-'));
  const script = path.join(dir, 'init.ts');
  writeFileSync(
    script,
    `import { loadMlSettings } from ${JSON.stringify(path.join(ROOT, 'src/config'))};
import { initRuntime } from ${JSON.stringify(path.join(ROOT, 'src/ml/runtime'))};
import { configureMl } from ${JSON.stringify(path.join(ROOT, 'src/ml/settings'))};
Promise.resolve().then(() => {
  configureMl(loadMlSettings());
  return initRuntime(${opts});
}).then(
  (info) => console.log(JSON.stringify({ info })),
  (error) => console.log(JSON.stringify({ error: String(error.message) })),
);`,
  );
  return new Promise((resolve, reject) => {
    execFile(
      TSX,
      [script],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 },
      (error, stdout) => {
        rmSync(dir, { recursive: true, force: true });
        const line = stdout.split('\n').find((l) => l.startsWith('{'));
        if (!line) return reject(error ?? new Error(`no result from the child: ${stdout}`));
        resolve(JSON.parse(line));
      },
    );
  });
}

test('initialises wasm once, with SIMD, and reports it', async () => {
  const [a, b] = await Promise.all([initRuntime(), initRuntime()]);
  expect(a).toBe(b);
  expect(runtimeInfo()).toBe(a);
  expect(a).toEqual({ backend: 'wasm', tfjsVersion: tf.version.tfjs, simd: true, threads: 1 });
  expect(tf.getBackend()).toBe('wasm');
});

test('liveTensors counts the engine tensors', async () => {
  await initRuntime();
  const before = liveTensors();
  const t = tf.ones([2, 2]);
  expect(liveTensors()).toBe(before + 1);
  t.dispose();
  expect(liveTensors()).toBe(before);
});

test('fails loudly instead of falling back to cpu, and honours explicit choices', async () => {
  const [missingDir, optionDir, unknown, nativeAbsent, cpu] = await Promise.all([
    initInChild({ LYMPHOSCOPE_WASM_DIR: '/nonexistent/wasm' }),
    initInChild({}, JSON.stringify({ wasmDir: '/also/missing' })),
    initInChild({ LYMPHOSCOPE_ML_BACKEND: 'gpu' }),
    initInChild({ LYMPHOSCOPE_ML_BACKEND: 'tensorflow' }),
    initInChild({ LYMPHOSCOPE_ML_BACKEND: 'cpu' }),
  ]);
  expect(missingDir.error).toMatch(
    /wasm binaries are missing from '\/nonexistent\/wasm'.*LYMPHOSCOPE_WASM_DIR/,
  );
  expect(optionDir.error).toMatch(/missing from '\/also\/missing'/);
  expect(unknown.error).toBe(
    "Invalid configuration: LYMPHOSCOPE_ML_BACKEND: must be one of 'tensorflow', 'wasm', 'cpu', not 'gpu'",
  );
  expect(nativeAbsent.error).toMatch(/tfjs-node/);
  expect(cpu.info?.backend).toBe('cpu');
}, 180_000);
