import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHttpApi } from '../../src/local/http-api';

describe('the local HTTP API: static console files and CORS', () => {
  let dir: string;
  let api: Awaited<ReturnType<typeof startHttpApi>>;
  let base: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-http-'));
    await mkdir(path.join(dir, 'site', 'nested'), { recursive: true });
    await writeFile(path.join(dir, 'site', 'index.html'), '<p>console</p>');
    await writeFile(path.join(dir, 'site', 'app.js'), 'export {};');
    await writeFile(path.join(dir, 'site', 'nested', 'index.html'), '<p>nested</p>');
    await writeFile(path.join(dir, 'secret.txt'), 'outside the served folder');
    api = await startHttpApi({
      handler: async (event) => ({
        statusCode: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: event.rawPath }),
      }),
      staticDirs: { '/console': path.join(dir, 'site') },
      redirects: { '/explorer': '/console/explorer/' },
      landingPage: '<p>landing</p>',
    });
    base = `http://127.0.0.1:${api.port}`;
  });

  afterAll(async () => {
    await api?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the folder under its prefix, index.html for folders, with content types', async () => {
    const bare = await fetch(`${base}/console`, { redirect: 'manual' });
    expect(bare.status).toBe(301);
    expect(bare.headers.get('location')).toBe('/console/');
    const index = await fetch(`${base}/console/`);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await index.text()).toBe('<p>console</p>');
    const script = await fetch(`${base}/console/app.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await (await fetch(`${base}/console/nested/`)).text()).toBe('<p>nested</p>');
    expect((await fetch(`${base}/console/missing.js`)).status).toBe(404);
    expect((await fetch(`${base}/console/app.js`, { method: 'POST' })).status).toBe(405);
  });

  it('answers / with the landing page and redirects short names', async () => {
    const landing = await fetch(`${base}/`);
    expect(landing.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await landing.text()).toBe('<p>landing</p>');
    const explorer = await fetch(`${base}/explorer`, { redirect: 'manual' });
    expect(explorer.status).toBe(302);
    expect(explorer.headers.get('location')).toBe('/console/explorer/');
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
  });

  it('never serves a file outside the folder', async () => {
    for (const attempt of [
      '/console/../secret.txt',
      '/console/%2e%2e/secret.txt',
      '/console/..%2fsecret.txt',
    ]) {
      const response = await fetch(`${base}${attempt}`);
      expect(await response.text()).not.toContain('outside the served folder');
    }
  });

  it('answers a CORS preflight for /graphql and marks API answers as readable from any origin', async () => {
    const preflight = await fetch(`${base}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://console.example',
        'access-control-request-headers': 'x-api-key, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('x-api-key');
    const answer = await fetch(`${base}/graphql`, { method: 'POST', body: '{}' });
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect(await answer.json()).toEqual({ path: '/graphql' });
  });
});
