import path from 'node:path';
import type { Page } from 'playwright-core';
import { labelFromName } from '../../console/src/upload';
import type { LocalStack } from '../../src/local/stack';
import { startConsoleInBrowser } from '../helpers/browser';
import { graphqlClient, ok } from '../helpers/graphql';
import { SAMPLE_DIR } from '../helpers/sample';

const ADMIN_KEY = 'lsk_console_upload_admin_key_0123456789ab';

describe('labelFromName', () => {
  it('reads the label from a C-NMC name or an all/ or hem/ folder, and nothing else', () => {
    expect(labelFromName('UID_11_1_1_all.bmp')).toBe('ALL');
    expect(labelFromName('cnmc-sample/hem/UID_H10_1_1_hem.bmp')).toBe('NORMAL');
    expect(labelFromName('cnmc-sample/all/cell.png')).toBe('ALL');
    expect(labelFromName('small_hall.bmp')).toBeNull();
    expect(labelFromName('MANIFEST.csv')).toBeNull();
  });
});

/**
 * The console's upload page in headless Chromium against the local stack: real C-NMC cells go from the
 * file picker through presigned uploads into a dataset; MANIFEST.csv is skipped with a note.
 */
describe('uploading images in the console', () => {
  let ui: Awaited<ReturnType<typeof startConsoleInBrowser>>;
  let stack: LocalStack;
  let page: Page;
  let pageErrors: string[];
  let datasetId: string;

  beforeAll(async () => {
    ui = await startConsoleInBrowser('console-upload', ADMIN_KEY);
    ({ stack, page, pageErrors } = ui);
    datasetId = ok(
      await graphqlClient(
        stack.url,
        ADMIN_KEY,
      )('mutation { createDataset(input: { name: "from the console" }) { id } }'),
    ).createDataset.id;
  }, 120_000);

  afterAll(() => ui?.stop());

  it('adds picked cells to the chosen dataset with labels from their names, skipping what is not an image', async () => {
    await page.goto(stack.consoleUrl);
    await page.fill('#api-key', ADMIN_KEY);
    await page.press('#api-key', 'Enter');
    await page.waitForSelector('nav a[data-route="upload"]');
    await page.click('nav a[data-route="upload"]');
    await page.waitForFunction(() =>
      document.querySelector('#upload-status')?.textContent?.includes('Choose'),
    );
    await page.selectOption('#upload-dataset', datasetId);
    // What the page sends to storage (not preflights): each image as a presigned POST form.
    const toStorage: Array<{ method: string; contentType: string | undefined }> = [];
    page.on('request', (request) => {
      if (request.url().startsWith(stack.s3Endpoint) && request.method() !== 'OPTIONS') {
        toStorage.push({ method: request.method(), contentType: request.headers()['content-type'] });
      }
    });
    await page.setInputFiles('#upload-files', [
      path.join(SAMPLE_DIR, 'all', 'UID_11_1_1_all.bmp'),
      path.join(SAMPLE_DIR, 'hem', 'UID_H10_1_1_hem.bmp'),
      path.join(SAMPLE_DIR, 'MANIFEST.csv'),
    ]);
    await page.click('#upload-start');
    await page.waitForFunction(
      () => document.querySelector('#upload-status')?.textContent?.startsWith('Done'),
      undefined,
      {
        timeout: 30_000,
      },
    );
    expect(await page.textContent('#upload-status')).toBe(
      'Done: 2 added, 0 already there, 0 rejected, 1 skipped.',
    );
    expect(await page.$$eval('#upload-results li', (items) => items.map((li) => li.textContent))).toEqual([
      'UID_11_1_1_all.bmp: added as ALL',
      'UID_H10_1_1_hem.bmp: added as NORMAL',
      'MANIFEST.csv: skipped, not an image (BMP, PNG, JPEG or TIFF)',
    ]);
    expect(toStorage).toEqual([
      { method: 'POST', contentType: expect.stringMatching(/^multipart\/form-data; boundary=/) },
      { method: 'POST', contentType: expect.stringMatching(/^multipart\/form-data; boundary=/) },
    ]);
    const { dataset } = ok(
      await graphqlClient(stack.url, ADMIN_KEY)(
        'query($id: ID!) { dataset(id: $id) { imageCount labelCounts { label count } } }',
        { id: datasetId },
      ),
    );
    expect(dataset.imageCount).toBe(2);
    expect(dataset.labelCounts).toEqual(
      expect.arrayContaining([
        { label: 'ALL', count: 1 },
        { label: 'NORMAL', count: 1 },
      ]),
    );
    expect(pageErrors).toEqual([]);
  });
});
