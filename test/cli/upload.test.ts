import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLocalStack, type LocalStack } from '../../src/local/stack';
import { graphqlClient, ok } from '../helpers/graphql';
import { SAMPLE_DIR } from '../helpers/sample';

const run = promisify(execFile);
const BIN = path.join(__dirname, '..', '..', 'bin', 'lymphoscope.js');
const ADMIN_KEY = 'lsk_upload_cli_admin_key_0123456789abcdef';

/**
 * `lymphoscope upload` against the local stack over real HTTP: the real C-NMC sample folder goes into a
 * dataset through presigned uploads, its MANIFEST.csv and NOTICE.md are skipped with a note, identical
 * bytes are not stored twice, and a broken file is listed with the API's reason.
 */
describe('lymphoscope upload', () => {
  let dir: string;
  let stack: LocalStack;
  let datasetId: string;
  const gql = () => graphqlClient(stack.url, ADMIN_KEY);
  const cli = (...args: string[]) =>
    run(process.execPath, [BIN, 'upload', ...args, '--api-url', stack.url, '--key', ADMIN_KEY], {
      env: { ...process.env, CI: 'true' },
    });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lymphoscope-upload-'));
    stack = await startLocalStack({ dataDir: dir, adminKey: ADMIN_KEY, demoModel: false, logLevel: 'warn' });
    datasetId = ok(await gql()('mutation { createDataset(input: { name: "uploaded sample" }) { id } }'))
      .createDataset.id;
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('uploads the 63 sample cells with their labels and subjects, skipping the files that are not images', async () => {
    const { stdout } = await cli(SAMPLE_DIR, '--dataset', datasetId);
    expect(stdout).toContain('Skipping 2 that are not images in all/ or hem/: MANIFEST.csv, NOTICE.md\n');
    expect(stdout).toContain('Uploaded 63 new images');
    expect(stdout).toContain('0 were already there, 0 rejected');
    const { dataset } = ok(
      await gql()(
        'query($id: ID!) { dataset(id: $id) { imageCount labelCounts { label count } subjectCounts { subjectId } } }',
        { id: datasetId },
      ),
    );
    expect(dataset.imageCount).toBe(63);
    expect(dataset.labelCounts).toEqual(
      expect.arrayContaining([
        { label: 'ALL', count: 31 },
        { label: 'NORMAL', count: 32 },
      ]),
    );
    expect(dataset.subjectCounts.map((s: { subjectId: string }) => s.subjectId)).not.toContain('(none)');
  }, 240_000);

  it('stores identical bytes once, lists a broken image with its reason, and exits 1', async () => {
    const folder = path.join(dir, 'mixed');
    await mkdir(path.join(folder, 'all'), { recursive: true });
    await mkdir(path.join(folder, 'hem'), { recursive: true });
    await copyFile(
      path.join(SAMPLE_DIR, 'all', 'UID_11_1_1_all.bmp'),
      path.join(folder, 'all', 'UID_11_1_1_all.bmp'),
    );
    await writeFile(path.join(folder, 'hem', 'broken.bmp'), 'BM this is not a bitmap');
    await writeFile(path.join(folder, 'hem', 'notes.txt'), 'not an image');
    const failed = await cli(folder, '--dataset', datasetId).then(
      () => null,
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stdout).toContain('Skipping 1 that are not images in all/ or hem/: hem/notes.txt\n');
    expect(failed?.stdout).toContain('Uploaded 0 new images');
    expect(failed?.stdout).toContain('1 were already there, 1 rejected');
    expect(failed?.stderr).toMatch(/rejected hem\/broken\.bmp: UNSUPPORTED_IMAGE /);
    const { dataset } = ok(
      await gql()('query($id: ID!) { dataset(id: $id) { imageCount } }', { id: datasetId }),
    );
    expect(dataset.imageCount).toBe(63);
  }, 60_000);

  it('stops before uploading anything on a dataset that does not exist', async () => {
    await expect(cli(SAMPLE_DIR, '--dataset', 'ds-missing')).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('No dataset ds-missing'),
    });
  });
});
