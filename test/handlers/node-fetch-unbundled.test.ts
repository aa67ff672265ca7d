import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type * as Tf from '@tensorflow/tfjs';
import fetchStandIn from '../../src/handlers/node-fetch-unbundled';

/**
 * The stand-in the Lambda bundles use for node-fetch (an esbuild alias in serverless.yml): tfjs-core's Node
 * platform requires node-fetch only where there is no global fetch, which Node 22 always has. The packaging
 * test proves a whole bundle; this checks the installed tfjs-core still works that way.
 */
const ROOT = path.join(__dirname, '..', '..');

describe('node-fetch-unbundled', () => {
  it('is aliased in serverless.yml for node-fetch', () => {
    const yml = readFileSync(path.join(ROOT, 'serverless.yml'), 'utf8');
    expect(yml).toMatch(/^\s*node-fetch:\s*\.\/src\/handlers\/node-fetch-unbundled\.ts\s*$/m);
  });

  it("is reached by tfjs-core's Node platform only when the global fetch is missing", () => {
    const core = readFileSync(require.resolve('@tensorflow/tfjs-core/dist/tf-core.node.js'), 'utf8');
    const requires = [...core.matchAll(/require\('node-fetch'\)/g)];
    expect(requires).toHaveLength(1);
    const platformFetch = /PlatformNode\.prototype\.fetch = function[^]*?\n {4}\};/.exec(core)?.[0];
    expect(platformFetch).toBeDefined();
    const globalFirst = platformFetch!.indexOf('env().global.fetch != null');
    expect(globalFirst).toBeGreaterThan(0);
    expect(platformFetch!.indexOf('importFetch()')).toBeGreaterThan(globalFirst);
  });

  it("lets tfjs fetch over Node's own fetch with the stand-in in node-fetch's place", async () => {
    const server: Server = createServer((_, res) => res.end('{"cells":63}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      let tf!: typeof Tf;
      jest.isolateModules(() => {
        jest.doMock('node-fetch', () => ({ __esModule: true, default: fetchStandIn }));
        // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh tfjs, with the stand-in
        tf = require('@tensorflow/tfjs') as typeof Tf;
      });
      const { port } = server.address() as AddressInfo;
      const response = await tf.env().platform.fetch(`http://127.0.0.1:${port}/`);
      expect(await response.json()).toEqual({ cells: 63 });
    } finally {
      server.close();
    }
  });

  it('says why when called anyway', () => {
    expect(() => fetchStandIn()).toThrow(/not bundled in the Lambda zip/);
  });
});
