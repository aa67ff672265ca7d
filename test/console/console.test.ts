import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { buildConsole } from '../../console/build';
import { startLocalStack, type LocalStack } from '../../src/local/stack';
import { launchChromium } from '../helpers/browser';
import { graphqlClient, ok } from '../helpers/graphql';
import { seedReviewData, type ReviewData } from '../helpers/review-fixture';
import { COMPARED_FEATURES } from '../../src/ml/features/morphology';

const ADMIN_KEY = 'lsk_console_e2e_admin_key_0123456789abcdef';
const NOTE = 'vacuoles and a clefted nucleus; heterochromatin';

/** Waits until an <img> has decoded real pixels: the presigned URL answered and the bytes are an image. */
async function imageLoaded(page: Page, selector: string): Promise<number> {
  await page.waitForFunction(
    (s) => {
      const img = document.querySelector<HTMLImageElement>(s);
      return Boolean(img && img.complete && img.naturalWidth > 0);
    },
    selector,
    { timeout: 15_000 },
  );
  return page.$eval(selector, (img) => (img as HTMLImageElement).naturalWidth);
}

/**
 * The review console in headless Chromium against the local stack: the console built from source,
 * served by the stack at /console/, talking to the real API over HTTP and loading images from the
 * local S3 through presigned URLs.
 */
describe('the review console in a real browser', () => {
  let dir: string;
  let stack: LocalStack;
  let data: ReviewData;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  const pageErrors: string[] = [];
  const gql = () => graphqlClient(stack.url, ADMIN_KEY);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-console-'));
    const { outDir } = await buildConsole(path.join(dir, 'console'));
    stack = await startLocalStack({
      dataDir: dir,
      adminKey: ADMIN_KEY,
      demoModel: false,
      logLevel: 'warn',
      consoleDir: outDir,
    });
    [data, browser] = await Promise.all([seedReviewData(stack, ADMIN_KEY, dir, 3), launchChromium()]);
    page = await browser.context.newPage();
    page.on('pageerror', (error) => pageErrors.push(String(error)));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a wrong key, then signs in with the admin key and keeps the session across a reload', async () => {
    await page.goto(stack.consoleUrl);
    await page.fill('#api-key', 'lsk_not_a_real_key_000000000000000000');
    await page.press('#api-key', 'Enter');
    await page.waitForFunction(() => document.querySelector('#sign-in-error')?.textContent !== '');
    expect(await page.textContent('#sign-in-error')).toMatch(/key/i);

    await page.fill('#api-key', ADMIN_KEY);
    await page.press('#api-key', 'Enter');
    await page.waitForSelector('#queue-status');
    expect(await page.textContent('header .who')).toContain('(admin)');
    await page.reload();
    await page.waitForSelector('#cell-image');
    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual(['lymphoscope.console.session']);
  });

  it('shows the oldest cell with its heat map, model call and morphology, and reviews two cells by keyboard', async () => {
    expect(await imageLoaded(page, '#cell-image')).toBe(450);
    expect(await page.textContent('#queue-status')).toContain('3 waiting');
    expect(await page.textContent('.cell figcaption')).toContain(data.predictionIds[0]);

    const { prediction: first } = ok(
      await gql()(
        'query($id: ID!) { prediction(id: $id) { label probabilityAll threshold reviewReasons } }',
        {
          id: data.predictionIds[0],
        },
      ),
    );
    expect(await page.textContent('#model-label')).toBe(first.label === 'ALL' ? 'ALL' : 'Normal');
    expect(await page.getAttribute('.probability', 'aria-valuenow')).toBe(String(first.probabilityAll));
    // Shape, then chromatin texture, each against the demo model's class norms.
    const rows = await page.$$eval('.morphology tbody th', (cells) => cells.map((c) => c.textContent));
    expect(rows).toHaveLength(COMPARED_FEATURES.length);
    expect(rows).toContain('Area (px²)');
    expect(rows).toContain('Nucleus share (Otsu)');
    // Why it is in the queue: one chip per reason, as the API gives them (the band covers everything here).
    expect(first.reviewReasons).toContain('UNCERTAIN');
    const chips = await page.$$eval('#review-reasons .badge', (found) =>
      found.map((c) => [c.getAttribute('data-reason'), c.textContent]),
    );
    expect(chips.map(([reason]) => reason)).toEqual(first.reviewReasons);
    expect(chips).toContainEqual(['UNCERTAIN', 'Uncertain']);

    // H shows the Grad-CAM overlay, H again hides it.
    expect(await page.$eval('#heatmap', (e) => e.classList.contains('visible'))).toBe(false);
    await page.keyboard.press('h');
    expect(await page.$eval('#heatmap', (e) => e.classList.contains('visible'))).toBe(true);
    // The colour scale shows with the heat map, and only then.
    expect(await page.isVisible('#heatmap-legend')).toBe(true);
    expect(await page.textContent('#heatmap-legend')).toContain('Grad-CAM');
    expect(await imageLoaded(page, '#heatmap')).toBe(450);
    await page.keyboard.press('h');
    expect(await page.$eval('#heatmap', (e) => e.classList.contains('visible'))).toBe(false);
    expect(await page.isVisible('#heatmap-legend')).toBe(false);

    // A: the first cell is ALL; the page moves on to the second.
    await page.keyboard.press('a');
    await page.waitForFunction(
      (id) => !document.querySelector('.cell figcaption')?.textContent?.includes(id),
      data.predictionIds[0],
    );
    expect(await page.textContent('.cell figcaption')).toContain(data.predictionIds[1]);
    expect(await page.textContent('#queue-status')).toContain('1 reviewed');

    // Keys typed into the note are text, not shortcuts; Esc leaves the field, N decides Normal.
    await page.click('#review-note');
    await page.keyboard.type(NOTE);
    expect(await page.textContent('.cell figcaption')).toContain(data.predictionIds[1]);
    await page.keyboard.press('Escape');
    await page.keyboard.press('n');
    await page.waitForFunction(() =>
      document.querySelector('#queue-status')?.textContent?.includes('2 reviewed'),
    );
    expect(await page.textContent('.cell figcaption')).toContain(data.predictionIds[2]);
    expect(await page.inputValue('#review-note')).toBe('');

    // The reviews are stored: read back through the API.
    const stored = ok(
      await gql()(
        `query($a: ID!, $b: ID!) {
          a: prediction(id: $a) { review { label note reviewer } }
          b: prediction(id: $b) { review { label note } }
          reviewQueue { edges { node { id } } }
        }`,
        { a: data.predictionIds[0], b: data.predictionIds[1] },
      ),
    );
    expect(stored.a.review).toMatchObject({ label: 'ALL', note: null });
    expect(stored.b.review).toEqual({ label: 'NORMAL', note: NOTE });
    expect(stored.reviewQueue.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([
      data.predictionIds[2],
    ]);
  });

  it('compares the versions, shows the curves of one and lets an admin promote it after naming the current one', async () => {
    await page.click('a[data-route="models"]');
    await page.waitForSelector('#metrics-table');
    const columns = await page.$$eval('#metrics-table thead button[data-version]', (b) =>
      b.map((e) => e.textContent),
    );
    expect(columns).toEqual([data.candidateVersion, data.productionVersion]);

    // Production is selected first: its three charts load from S3 and the confusion matrix is its test split's.
    expect(await page.getAttribute('#model-detail', 'data-version')).toBe(data.productionVersion);
    for (const chart of ['#chart-training-curves', '#chart-roc', '#chart-pr']) {
      expect(await imageLoaded(page, chart)).toBeGreaterThan(300);
    }
    const { modelVersion } = ok(
      await gql()(
        'query($v: ID!) { modelVersion(version: $v) { testMetrics { truePositives falseNegatives falsePositives trueNegatives } } }',
        { v: data.productionVersion },
      ),
    );
    const m = modelVersion.testMetrics;
    expect(
      await page.$$eval('#confusion-matrix td', (cells) => cells.map((c) => Number(c.textContent))),
    ).toEqual([m.truePositives, m.falseNegatives, m.falsePositives, m.trueNegatives]);
    expect(await page.$('#promote')).toBeNull();

    await page.click(`#metrics-table button[data-version="${data.candidateVersion}"]`);
    await page.waitForSelector(`#model-detail[data-version="${data.candidateVersion}"]`);
    expect(await imageLoaded(page, '#chart-training-curves')).toBeGreaterThan(300);
    await page.click('#promote');
    expect(await page.textContent('#promote-question')).toContain(`replace ${data.productionVersion}`);
    await page.click('#promote-confirm');
    await page.waitForFunction(
      (v) => document.querySelector('#models-status')?.textContent?.includes(`production: ${v}`),
      data.candidateVersion,
    );
    const { productionModel } = ok(await gql()('{ productionModel { version } }'));
    expect(productionModel.version).toBe(data.candidateVersion);
    expect(pageErrors).toEqual([]);
  });
});
