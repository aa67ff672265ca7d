import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium package; .ci/run installs it before the tests. */
export const CHROMIUM = process.env.LYMPHOSCOPE_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Headless Chromium with a fresh profile, nothing in the background reaching for the network, and no
 * sandbox (CI runs as root in a container). Close it with the returned `close`, which also removes
 * the profile.
 */
export async function launchChromium(
  viewport = { width: 1280, height: 900 },
): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `No Chromium at ${CHROMIUM}: install it (apt-get install chromium, as .ci/run does) or set LYMPHOSCOPE_CHROMIUM.`,
    );
  }
  const profile = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-chromium-'));
  // launchPersistentContext is Playwright's way to pass --user-data-dir (launch() refuses the flag).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A local stack (no demo model) serving a console built into a temporary directory, and Chromium with one
 * page whose uncaught errors are collected in `pageErrors`. `stop` closes both and removes the directory.
 */
export async function startConsoleInBrowser(
  name: string,
  adminKey: string,
): Promise<{
  dir: string;
  stack: import('../../src/local/stack').LocalStack;
  browser: Awaited<ReturnType<typeof launchChromium>>;
  page: import('playwright-core').Page;
  pageErrors: string[];
  stop(): Promise<void>;
}> {
  const { buildConsole } = await import('../../console/build');
  const { startLocalStack } = await import('../../src/local/stack');
  const dir = await mkdtemp(path.join(os.tmpdir(), `lymphoscope-${name}-`));
  const { outDir } = await buildConsole(path.join(dir, 'console'));
  const [stack, browser] = await Promise.all([
    startLocalStack({ dataDir: dir, adminKey, demoModel: false, logLevel: 'warn', consoleDir: outDir }),
    launchChromium(),
  ]);
  const page = await browser.context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  return {
    dir,
    stack,
    browser,
    page,
    pageErrors,
    async stop() {
      await browser.close();
      await stack.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
