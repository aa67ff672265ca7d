/**
 * Builds the review console into console/dist (or `outDir`): one ES module bundle (urql included) next to
 * index.html, styles.css and config.js, and the offline GraphQL explorer in explorer/ (buildExplorer). esbuild and urql come from node_modules, so it builds offline in
 * about a second. `npx tsx console/build.ts [outDir]`; the browser test and `npm start` call buildConsole().
 */
import { build, type BuildOptions } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';

export const CONSOLE_DIR = __dirname;
export const CONSOLE_DIST = path.join(CONSOLE_DIR, 'dist');
const STATIC_FILES = ['index.html', 'styles.css', 'config.js'];

/** What the console and the explorer bundles share: browsers of the last few years (nothing needs more than ES2020), minified. */
const BROWSER_BUNDLE = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  metafile: true,
  logLevel: 'warning',
  legalComments: 'linked',
} as const satisfies BuildOptions;

export async function buildConsole(outDir = CONSOLE_DIST): Promise<{ outDir: string; bundleBytes: number }> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const result = await build({
    entryPoints: [path.join(CONSOLE_DIR, 'src', 'main.ts')],
    outfile: path.join(outDir, 'app.js'),
    ...BROWSER_BUNDLE,
    target: [...BROWSER_BUNDLE.target],
    sourcemap: true,
  });
  await Promise.all([
    ...STATIC_FILES.map((file) => copyFile(path.join(CONSOLE_DIR, file), path.join(outDir, file))),
    buildExplorer(outDir),
  ]);
  const bundleBytes =
    result.metafile.outputs[path.relative(process.cwd(), path.join(outDir, 'app.js'))]?.bytes ?? 0;
  return { outDir, bundleBytes };
}

/**
 * Builds the offline GraphQL explorer (GraphiQL with React, console/explorer) into `<outDir>/explorer`:
 * explorer.js and explorer.css (fonts inlined) next to index.html, about 2 MB minified, nothing fetched
 * from the network at build or run time. It reads the console's config.js for the API's URL.
 */
export async function buildExplorer(outDir = CONSOLE_DIST): Promise<{ outDir: string; bundleBytes: number }> {
  const explorerDir = path.join(outDir, 'explorer');
  await rm(explorerDir, { recursive: true, force: true });
  await mkdir(explorerDir, { recursive: true });
  const result = await build({
    entryPoints: [path.join(CONSOLE_DIR, 'explorer', 'main.ts')],
    outfile: path.join(explorerDir, 'explorer.js'),
    ...BROWSER_BUNDLE,
    target: [...BROWSER_BUNDLE.target],
    // React picks its production build by this; there is no process in a browser.
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  await copyFile(path.join(CONSOLE_DIR, 'explorer', 'index.html'), path.join(explorerDir, 'index.html'));
  const bundleBytes = Object.entries(result.metafile.outputs)
    .filter(([file]) => /\.(js|css)$/.test(file))
    .reduce((sum, [, output]) => sum + output.bytes, 0);
  return { outDir: explorerDir, bundleBytes };
}

if (require.main === module) {
  buildConsole(process.argv[2] ? path.resolve(process.argv[2]) : undefined)
    .then(({ outDir, bundleBytes }) => {
      process.stdout.write(`Console built in ${outDir} (app.js ${(bundleBytes / 1024).toFixed(0)} KiB)\n`);
    })
    .catch((error: unknown) => {
      process.stderr.write(`Console build failed: ${String(error)}\n`);
      process.exit(1);
    });
}
