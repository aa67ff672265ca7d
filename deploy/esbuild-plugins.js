'use strict';

/**
 * esbuild plugins for the Lambda bundles, given to serverless-esbuild (custom.esbuild.plugins in
 * serverless.yml), which calls this with the Serverless instance and builds each function on its own.
 *
 * TF.js beside the API's bundle, not in it. The API function serves a model with onnxruntime whenever
 * its ONNX twin runs all of it (src/ml/serving/tfjs-network.ts) and then never loads TF.js, yet V8 still
 * parsed TF.js's 1.2 MB with the rest of the bundle on every cold start. In the graphql bundle,
 * `@tensorflow/tfjs` and `@tensorflow/tfjs-backend-wasm` are stand-ins that require graphql.tfjs.js
 * next to the bundle, built here with the bundle's options: one copy of TF.js (core, layers, the cpu and
 * wasm backends), read on first use. The workers, which train and score with TF.js, keep it inside their
 * bundles. The file is named after the bundle, so serverless-esbuild packs it into the graphql zip alone,
 * as it does a bundle's source map (graphql.js.map); the packaging test checks every zip and predicts
 * through the file with LYMPHOSCOPE_ONNX=off. docs/PERFORMANCE.md, "Packaged cold start, fifth pass",
 * has the measurement.
 */
const path = require('node:path');

/** The function whose bundle leaves TF.js out. */
const API_FUNCTION = 'graphql';
/** The packages the stand-ins replace; together they are one TF.js (the umbrella and its wasm backend). */
const TFJS_PACKAGES = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'];
const NAMESPACE = 'lymphoscope-tfjs-beside';

/** The API handler's file name without its extension (src/handlers/graphql). */
function handlerPath(serverless) {
  const { handler } = serverless.service.getFunction(API_FUNCTION);
  return handler.slice(0, handler.lastIndexOf('.'));
}

function tfjsBeside(serverless) {
  return {
    name: 'lymphoscope-tfjs-beside',
    setup(build) {
      const [entry] = build.initialOptions.entryPoints ?? [];
      if (typeof entry !== 'string') return;
      const bundle = entry.slice(0, entry.length - path.extname(entry).length);
      if (path.normalize(bundle) !== path.normalize(handlerPath(serverless))) return;
      const tfjsFile = `${path.basename(bundle)}.tfjs.js`;
      build.onResolve({ filter: /^@tensorflow\// }, (args) =>
        TFJS_PACKAGES.includes(args.path) ? { path: args.path, namespace: NAMESPACE } : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({
        contents: `module.exports = require('./${tfjsFile}')[${JSON.stringify(args.path)}];`,
        loader: 'js',
      }));
      // The stand-ins' require stays a require, resolved at run time next to the bundle.
      build.onResolve({ filter: /\.tfjs\.js$/, namespace: NAMESPACE }, (args) => ({
        path: args.path,
        external: true,
      }));

      build.onEnd(async (result) => {
        if (result.errors.length > 0) return;
        // The bundle's options, less its entry, output and plugins (this one would recurse).
        const {
          entryPoints: _entryPoints,
          outdir,
          outfile,
          plugins: _plugins,
          metafile: _metafile,
          ...options
        } = build.initialOptions;
        const exports = TFJS_PACKAGES.map((p) => `${JSON.stringify(p)}: require(${JSON.stringify(p)})`);
        await build.esbuild.build({
          ...options,
          stdin: {
            contents: `module.exports = { ${exports.join(', ')} };`,
            resolveDir: process.cwd(),
            sourcefile: tfjsFile,
            loader: 'js',
          },
          outfile: path.join(outdir ?? path.dirname(outfile), tfjsFile),
        });
      });
    },
  };
}

module.exports = (serverless) => [tfjsBeside(serverless)];
