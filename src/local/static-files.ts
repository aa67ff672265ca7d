import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Serves the files of `dir` under the URL prefix `mount` (e.g. the built review console at /console/),
 * the way a static host would: `mount` alone redirects to `mount/`, a folder answers its index.html,
 * and nothing outside `dir` can be reached. Never throws; a missing build answers 404 with the fix.
 */
export async function serveStatic(
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
  mount: string,
  dir: string,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' });
    res.end();
    return;
  }
  if (pathname === mount) {
    res.writeHead(301, { location: `${mount}/` });
    res.end();
    return;
  }
  let relative: string;
  try {
    relative = decodeURIComponent(pathname.slice(mount.length + 1)) || 'index.html';
  } catch {
    res.writeHead(400);
    res.end();
    return;
  }
  const root = path.resolve(dir);
  const file = path.resolve(root, relative);
  if (relative.includes('\0') || (file !== root && !file.startsWith(root + path.sep))) {
    res.writeHead(404);
    res.end();
    return;
  }
  const info = await stat(file).catch(() => null);
  const target = info?.isDirectory() ? path.join(file, 'index.html') : file;
  const targetInfo = info?.isDirectory() ? await stat(target).catch(() => null) : info;
  if (!targetInfo?.isFile()) {
    const missingBuild = relative === 'index.html';
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(
      missingBuild
        ? `Not built: ${root} has no index.html. Run \`npx tsx console/build.ts\`.\n`
        : 'Not found\n',
    );
    return;
  }
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[path.extname(target)] ?? 'application/octet-stream',
    'content-length': targetInfo.size,
    // Local development: always revalidate, so a rebuild shows on the next reload.
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(target)
    .on('error', () => res.destroy())
    .pipe(res);
}

/**
 * The page at / of the local stack: where each part lives, so a new user need not guess URLs. Plain HTML
 * with no script and nothing from the network; the offline explorer is listed first because Apollo
 * Sandbox (GET /graphql) needs the internet.
 */
export function landingPage(paths: { api: string; console: string; explorer: string }): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Lymphoscope (local)</title>
    <link rel="icon" href="data:," />
    <style>
      body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 3rem auto; padding: 0 1rem; color: #1d2433; }
      li { margin: 0.6rem 0; }
      code { background: #eef1f6; padding: 0 0.25rem; border-radius: 3px; }
    </style>
  </head>
  <body>
    <h1>Lymphoscope is running</h1>
    <p>A GraphQL API that classifies single-cell microscopy images as ALL blast or normal, for a human to confirm.</p>
    <ul>
      <li><a id="explorer-link" href="${paths.explorer}">GraphQL explorer</a> (GraphiQL, works offline): write and run queries with the schema's documentation beside them.</li>
      <li><a id="console-link" href="${paths.console}">Review console</a>: sign in with an API key to review cells and compare models.</li>
      <li><a id="sandbox-link" href="${paths.api}">Apollo Sandbox</a> (needs the internet: it loads from Apollo's servers).</li>
      <li>The API itself: <code>POST ${paths.api}</code> with a JSON body; see docs/API.md for every operation.</li>
    </ul>
  </body>
</html>
`;
}
