import { loadConfig, loadMlSettings } from '../src/config';
import { DEFAULT_ML_SETTINGS } from '../src/ml/settings';

describe('the ML variables, read and validated once', () => {
  it('mean the defaults when unset or blank, as they always have', () => {
    expect(loadMlSettings({})).toEqual(DEFAULT_ML_SETTINGS);
    expect(loadConfig({}).ml).toEqual(DEFAULT_ML_SETTINGS);
    const blank = {
      LYMPHOSCOPE_ML_BACKEND: '',
      LYMPHOSCOPE_WASM_DIR: ' ',
      LYMPHOSCOPE_ONNX: '',
      LYMPHOSCOPE_ONNX_THREADS: '  ',
      LYMPHOSCOPE_TRAIN_RUNTIME: '',
    };
    expect(loadMlSettings(blank)).toEqual(DEFAULT_ML_SETTINGS);
    expect(DEFAULT_ML_SETTINGS).toEqual({
      backend: 'auto',
      wasmDir: null,
      onnx: true,
      onnxThreads: null,
      trainingRuntime: 'onnxruntime',
    });
  });

  it('reads each one, in any case and with spaces around it', () => {
    const env = {
      LYMPHOSCOPE_ML_BACKEND: ' CPU ',
      LYMPHOSCOPE_WASM_DIR: '/var/task/wasm',
      LYMPHOSCOPE_ONNX: 'Off',
      LYMPHOSCOPE_ONNX_THREADS: '2',
      LYMPHOSCOPE_TRAIN_RUNTIME: 'TFJS',
    };
    const expected = {
      backend: 'cpu',
      wasmDir: '/var/task/wasm',
      onnx: false,
      onnxThreads: 2,
      trainingRuntime: 'tfjs',
    };
    expect(loadMlSettings(env)).toEqual(expected);
    expect(loadConfig(env).ml).toEqual(expected);
    expect(loadMlSettings({ LYMPHOSCOPE_ONNX: 'on', LYMPHOSCOPE_ML_BACKEND: 'wasm' })).toMatchObject({
      onnx: true,
      backend: 'wasm',
    });
    expect(Object.isFrozen(loadConfig(env).ml)).toBe(true);
  });

  it.each([
    ['LYMPHOSCOPE_ML_BACKEND', 'gpu', "must be one of 'tensorflow', 'wasm', 'cpu', not 'gpu'"],
    ['LYMPHOSCOPE_ONNX', 'false', "must be one of 'on', 'off', not 'false'"],
    ['LYMPHOSCOPE_TRAIN_RUNTIME', 'onnx', "must be one of 'onnxruntime', 'tfjs', not 'onnx'"],
    ['LYMPHOSCOPE_ONNX_THREADS', '0', 'must be an integer from 1 to 256'],
    ['LYMPHOSCOPE_ONNX_THREADS', '257', 'must be an integer from 1 to 256'],
    ['LYMPHOSCOPE_ONNX_THREADS', '1.5', 'must be an integer from 1 to 256'],
    ['LYMPHOSCOPE_ONNX_THREADS', 'all', 'must be an integer from 1 to 256'],
  ])('refuses %s=%s, naming the variable and what it may be', (name, value, problem) => {
    const message = `Invalid configuration: ${name}: ${problem}`;
    expect(() => loadMlSettings({ [name]: value })).toThrow(message);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it('reads only the ML variables for the CLI and benches, which run no services', () => {
    const env = { LYMPHOSCOPE_MAX_BATCH: 'lots', LYMPHOSCOPE_TRAIN_RUNTIME: 'tfjs' };
    expect(() => loadConfig(env)).toThrow(/LYMPHOSCOPE_MAX_BATCH/);
    expect(loadMlSettings(env).trainingRuntime).toBe('tfjs');
  });
});

describe('LYMPHOSCOPE_S3_REQUESTS', () => {
  it("is 'direct' unless set, reads 'sdk' in any case, and refuses anything else", () => {
    expect(loadConfig({}).s3Requests).toBe('direct');
    expect(loadConfig({ LYMPHOSCOPE_S3_REQUESTS: '' }).s3Requests).toBe('direct');
    expect(loadConfig({ LYMPHOSCOPE_S3_REQUESTS: ' SDK ' }).s3Requests).toBe('sdk');
    expect(() => loadConfig({ LYMPHOSCOPE_S3_REQUESTS: 'raw' })).toThrow(
      "Invalid configuration: LYMPHOSCOPE_S3_REQUESTS: must be one of 'direct', 'sdk', not 'raw'",
    );
  });
});
