import type { Page } from 'playwright-core';
import type { LocalStack } from '../../src/local/stack';
import { startConsoleInBrowser } from '../helpers/browser';

const ADMIN_KEY = 'lsk_explorer_e2e_admin_key_0123456789abcdef';

/** Sets the text of one of GraphiQL's CodeMirror editors (the query, or the headers). */
async function setEditor(page: Page, selector: string, text: string): Promise<void> {
  await page.$eval(
    selector,
    (element, value) => {
      const editor = (element as HTMLElement & { CodeMirror?: { setValue(v: string): void } }).CodeMirror;
      if (!editor) throw new Error('no CodeMirror editor here');
      editor.setValue(value);
    },
    text,
  );
}

/** Runs the query in the editor and returns the response panel's JSON once it holds `expected`. */
async function run(page: Page, expected: string): Promise<unknown> {
  // Nothing in flight (the schema's introspection, an earlier query): a click would stop it instead.
  await page.waitForSelector('.graphiql-spinner', { state: 'detached', timeout: 45_000 });
  await page.click('.graphiql-execute-button');
  await page
    .waitForFunction(
      (text) => document.querySelector('.result-window')?.textContent?.includes(text),
      expected,
      { timeout: 45_000 },
    )
    .catch(async (error: Error) => {
      throw new Error(
        `${error.message}; the response panel holds: ${await page.textContent('.result-window')}`,
      );
    });
  return page.$eval('.result-window .CodeMirror', (element) =>
    JSON.parse((element as HTMLElement & { CodeMirror: { getValue(): string } }).CodeMirror.getValue()),
  );
}

/**
 * The offline explorer (GraphiQL bundled by console/build.ts) in headless Chromium with every request
 * that is not to this machine blocked: it must load, find the schema and run queries against the local
 * stack with nothing from the internet.
 */
describe('the offline GraphQL explorer in a real browser', () => {
  let ui: Awaited<ReturnType<typeof startConsoleInBrowser>>;
  let stack: LocalStack;
  let page: Page;
  let pageErrors: string[];
  const blocked: string[] = [];

  beforeAll(async () => {
    ui = await startConsoleInBrowser('explorer', ADMIN_KEY);
    ({ stack, page, pageErrors } = ui);
    await ui.browser.context.route('**/*', (route) => {
      const { hostname, protocol } = new URL(route.request().url());
      if (protocol === 'data:' || hostname === '127.0.0.1' || hostname === 'localhost')
        return route.continue();
      blocked.push(route.request().url());
      return route.abort('internetdisconnected');
    });
  }, 120_000);

  afterAll(() => ui?.stop());

  it('is linked from the landing page and runs the default health query offline', async () => {
    await page.goto(new URL('/', stack.url).toString());
    await page.click('#explorer-link');
    await page.waitForSelector('.graphiql-execute-button', { timeout: 20_000 });
    expect(page.url()).toBe(stack.explorerUrl);
    const answer = await run(page, '"storageReachable"');
    expect(answer).toMatchObject({ data: { health: { status: 'ok', storageReachable: true } } });
  });

  it('sends the key from the headers editor and reads the schema for its docs', async () => {
    // Anonymous after the named default query: the explorer must not send the stale name "Health".
    await setEditor(page, '.graphiql-query-editor .CodeMirror', '{ me { name role } }');
    await setEditor(
      page,
      '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror',
      JSON.stringify({ 'x-api-key': ADMIN_KEY }),
    );
    const answer = await run(page, '"role"');
    expect(answer).toEqual({ data: { me: { name: 'local admin', role: 'ADMIN' } } });
    // The documentation pane is built from introspection of the local API.
    await page.click('[aria-label="Show Documentation Explorer"]');
    await page
      .waitForFunction(
        () => document.querySelector('.graphiql-doc-explorer')?.textContent?.includes('PredictInput'),
        undefined,
        { timeout: 10_000 },
      )
      .catch(async (error: Error) => {
        throw new Error(
          `${error.message}; docs: ${await page.textContent('.graphiql-plugin').catch(() => 'none')}`,
        );
      });
    expect(await page.textContent('.graphiql-doc-explorer')).toContain('Mutation');
  });

  it('asked for nothing outside this machine and threw nothing', () => {
    expect(blocked).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
