/**
 * Regenerates docs/screenshots/*.png: the review console's two pages, from a fresh local stack seeded
 * the way the browser test seeds it (two small models trained on the C-NMC sample, predictions of
 * sample cells waiting for review). Needs Chromium (Debian's chromium package, or LYMPHOSCOPE_CHROMIUM).
 *
 *   npx tsx scripts/screenshots.ts
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { buildConsole } from '../console/build';
import { startLocalStack } from '../src/local/stack';
import { launchChromium } from '../test/helpers/browser';
import { seedReviewData } from '../test/helpers/review-fixture';

const OUT_DIR = path.join(__dirname, '..', 'docs', 'screenshots');
const ADMIN_KEY = 'lsk_screenshots_admin_key_0123456789abcdef';

async function imagesLoaded(page: Page, selector: string): Promise<void> {
  await page.waitForFunction(
    (s) =>
      Array.from(document.querySelectorAll<HTMLImageElement>(s)).every(
        (img) => img.complete && img.naturalWidth > 0,
      ),
    selector,
    { timeout: 20_000 },
  );
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-screenshots-'));
  const { outDir } = await buildConsole(path.join(dir, 'console'));
  const stack = await startLocalStack({
    dataDir: dir,
    adminKey: ADMIN_KEY,
    demoModel: false,
    logLevel: 'warn',
    consoleDir: outDir,
  });
  const browser = await launchChromium({ width: 1280, height: 860 });
  try {
    await seedReviewData(stack, ADMIN_KEY, dir, 4);
    await mkdir(OUT_DIR, { recursive: true });
    const page = await browser.context.newPage();
    const shot = async (name: string) => {
      const file = path.join(OUT_DIR, name);
      await page.screenshot({ path: file, fullPage: true });
      process.stdout.write(`${path.relative(process.cwd(), file)}\n`);
    };

    await page.goto(stack.consoleUrl);
    await shot('sign-in.png');
    await page.fill('#api-key', ADMIN_KEY);
    await page.press('#api-key', 'Enter');
    await page.waitForSelector('#cell-image');
    await imagesLoaded(page, '.cell-image img');
    await page.fill('#review-note', 'Irregular outline, fine chromatin');
    await page.keyboard.press('Escape');
    await shot('review-queue.png');
    await page.keyboard.press('h');
    await page.waitForTimeout(300); // the overlay fades in
    await shot('review-queue-heatmap.png');

    await page.click('a[data-route="models"]');
    await page.waitForSelector('#model-detail');
    await imagesLoaded(page, '#model-detail img');
    await shot('models.png');
  } finally {
    await browser.close();
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `Screenshots failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
