#!/usr/bin/env node
// The command-line entry point: runs the TypeScript CLI through tsx, so no build step is needed.
require('tsx/cjs');
require('../src/cli/index.ts').run();
