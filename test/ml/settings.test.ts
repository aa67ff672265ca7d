import { availableParallelism } from 'node:os';
import { requestedTrainingRuntime } from '../../src/ml/onnx/accelerated-training';
import { defaultOnnxThreads, onnxRuntime, onnxRuntimeError } from '../../src/ml/onnx/session';
import { configureMl, DEFAULT_ML_SETTINGS, mlSettings } from '../../src/ml/settings';

// Each Jest test file has its own modules, so onnxRuntime() has not been asked for yet in this one.
beforeEach(() => configureMl(DEFAULT_ML_SETTINGS));

describe('configureMl', () => {
  it('gives what it is not told its default, not its previous value, and answers what it replaced', () => {
    const first = configureMl({ trainingRuntime: 'tfjs', onnxThreads: 3 });
    expect(first).toEqual(DEFAULT_ML_SETTINGS);
    const second = configureMl({ backend: 'cpu' });
    expect(second).toMatchObject({ trainingRuntime: 'tfjs', onnxThreads: 3 });
    expect(mlSettings()).toEqual({ ...DEFAULT_ML_SETTINGS, backend: 'cpu' });
    configureMl(second);
    expect(mlSettings()).toEqual(second);
    expect(Object.isFrozen(mlSettings())).toBe(true);
  });

  it('refuses a thread count onnxruntime cannot use', () => {
    for (const onnxThreads of [0, 257, 1.5, NaN]) {
      expect(() => configureMl({ onnxThreads })).toThrow(/onnxThreads must be an integer from 1 to 256/);
    }
    expect(mlSettings()).toEqual(DEFAULT_ML_SETTINGS);
  });

  it('decides the training runtime at every call, and the onnxruntime threads', () => {
    expect(requestedTrainingRuntime()).toBe('onnxruntime');
    expect(defaultOnnxThreads()).toBe(availableParallelism());
    configureMl({ trainingRuntime: 'tfjs', onnxThreads: 1 });
    expect(requestedTrainingRuntime()).toBe('tfjs');
    expect(defaultOnnxThreads()).toBe(1);
  });

  it('keeps onnxruntime unloaded when switched off before its first use, and says why', () => {
    configureMl({ onnx: false });
    expect(onnxRuntime()).toBeNull();
    expect(onnxRuntimeError()).toBe('disabled by LYMPHOSCOPE_ONNX=off');
    // Chosen once per process: switching it back on later changes nothing.
    configureMl({ onnx: true });
    expect(onnxRuntime()).toBeNull();
  });
});
