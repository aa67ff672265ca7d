/**
 * Jest setup (jest.config.js, setupFiles): each test file's ML core is configured from the environment of
 * the run, as every entry point configures it, so `LYMPHOSCOPE_TRAIN_RUNTIME=tfjs npx jest ...` or
 * `LYMPHOSCOPE_ONNX=off` still reach the tests that train or serve in process. A test that needs other
 * settings calls configureMl itself.
 */
import { loadMlSettings } from '../../src/config';
import { configureMl } from '../../src/ml/settings';

configureMl(loadMlSettings());
