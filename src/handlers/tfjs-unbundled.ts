/**
 * Stands in, inside the Lambda bundles only (an esbuild alias in serverless.yml), for the sub-packages
 * of the @tensorflow/tfjs umbrella that Lymphoscope never calls: the WebGL backend, the graph-model
 * converter and tf.data. The umbrella's Node build only re-exports them and reads their versions, so
 * these three names are all it needs; the code uses tfjs-core, tfjs-layers, the gradients and chained
 * ops the umbrella registers, and the wasm backend. Leaving them out takes the minified API bundle
 * from 7.23 to 6.39 MB (npm run bench:cold-start with LYMPHOSCOPE_BENCH_ZIP, 2026-11-27). The packaging test proves the bundle still loads a model from S3 and predicts
 * with a Grad-CAM heat map.
 */
export const version_webgl = 'not bundled';
export const version_converter = 'not bundled';
export const version_data = 'not bundled';
