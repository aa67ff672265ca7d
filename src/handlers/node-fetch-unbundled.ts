/**
 * Stands in, inside the Lambda bundles only (an esbuild alias in serverless.yml), for node-fetch, which
 * tfjs-core requires only when the platform has no global `fetch`: Node 18 and later have one, and the
 * Lambda runtime is Node 22, so tfjs never calls it. Leaving node-fetch out also leaves out whatwg-url and
 * tr46 (its URL parser and Unicode tables): 402 KB of the 5.34 MB minified API bundle that every cold
 * start had to parse (esbuild metafile, 2026-11-27). Called anyway, it says so.
 */
export default function fetch(): never {
  throw new Error('node-fetch is not bundled in the Lambda zip: this runtime has a global fetch.');
}
