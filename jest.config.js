/** @type {import('jest').Config} */
module.exports = {
  // Node's environment with Node's typed arrays, so native addons (onnxruntime-node) work in tests.
  testEnvironment: '<rootDir>/test/helpers/node-environment.js',
  // The ML core reads no environment (src/ml/settings.ts): each test file gets the run's, as an entry point would.
  setupFiles: ['<rootDir>/test/helpers/ml-settings.ts'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } },
    ],
    // vega, vega-lite and their d3 dependencies ship only ES modules, which Jest on Node 20 cannot
    // require: they are compiled to CommonJS like our own code (once; Jest caches the result).
    '^.+\\.m?js$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: [
    '/node_modules/(?!(vega|vega-[^/]+|d3-[^/]+|internmap|delaunator|robust-predicates|json-stringify-pretty-compact)/)',
  ],
  // The Node build of vega-canvas probes for the native `canvas` package with a top-level await, which
  // CommonJS cannot express; the browser build returns no canvas, which is what the SVG renderer expects.
  moduleNameMapper: { '^vega-canvas$': '<rootDir>/node_modules/vega-canvas/build/vega-canvas.browser.js' },
  // Generous: a hook that starts a whole local stack (S3, API, console build, emulator) and imports the
  // sample takes about 20 s alone but several times that on 2 cores shared with other test files.
  testTimeout: 180000,
  // Tests share two cores; the ML tests are CPU heavy, so run files two at a time at most.
  maxWorkers: 2,
};
