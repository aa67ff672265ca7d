import { sampleImages } from '../helpers/sample';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';
import { PSEUDONYM } from '../../src/services/pseudonyms';

/** The dataset resolvers: who may call what, argument checks, and the counts computed from one listing. */
describe('dataset resolvers', () => {
  let h: ResolverHarness;
  let datasetId: string;
  const cells = sampleImages();

  beforeAll(async () => {
    h = await startResolverHarness();
    const created = await h.run(
      h.keys.SCIENTIST,
      'mutation { createDataset(input: { name: "  cells  " }) { id name } }',
    );
    expect(created.data!.createDataset.name).toBe('cells');
    datasetId = created.data!.createDataset.id;
  });
  afterAll(() => h?.stop());

  const ADD =
    'mutation($input: AddImageInput!) { addImage(input: $input) { duplicate image { id label subjectId } } }';
  const datasetKeys = async () => (await h.s3.listKeys()).filter((k) => k.startsWith('datasets/'));

  it('lets scientists create datasets, refuses partners and callers without a key, writing nothing', async () => {
    const before = await datasetKeys();
    const mutation = 'mutation { createDataset(input: { name: "x" }) { id } }';
    expect((await h.run(null, mutation)).code).toBe('UNAUTHENTICATED');
    expect((await h.run('lsk_not_a_key_000000000000000000', mutation)).code).toBe('UNAUTHENTICATED');
    expect((await h.run(h.keys.PARTNER, mutation)).code).toBe('FORBIDDEN');
    expect(await datasetKeys()).toEqual(before);
    expect((await h.run(h.keys.ADMIN, mutation)).data!.createDataset.id).toMatch(/^ds-/);
  });

  it('adds an inline image decoded from base64 (plain or data: URL) once per content', async () => {
    const base64 = cells[0].bytes.toString('base64');
    const first = await h.run(h.keys.SCIENTIST, ADD, {
      input: { datasetId, label: 'ALL', imageBase64: base64, filename: cells[0].name },
    });
    expect(first.errors).toEqual([]);
    expect(first.data!.addImage).toMatchObject({ duplicate: false, image: { label: 'ALL' } });
    // The C-NMC file name gives the subject, stored as a pseudonym, never as sent.
    // (The subject, "11", may well appear inside 32 random-looking hex digits: the form is what is asserted.)
    const subject = cells[0].name.split('_')[1];
    expect(first.data!.addImage.image.subjectId).toMatch(PSEUDONYM);
    expect(first.data!.addImage.image.subjectId).not.toBe(subject);
    const again = await h.run(h.keys.SCIENTIST, ADD, {
      input: { datasetId, label: 'ALL', imageBase64: `data:image/bmp;base64,${base64}` },
    });
    expect(again.data!.addImage).toMatchObject({
      duplicate: true,
      image: { id: first.data!.addImage.image.id },
    });
  });

  it('refuses an image that is not base64 with BAD_USER_INPUT on imageBase64, storing nothing', async () => {
    const before = await datasetKeys();
    const result = await h.run(h.keys.SCIENTIST, ADD, {
      input: { datasetId, label: 'NORMAL', imageBase64: 'this is not base64!' },
    });
    expect(result.code).toBe('BAD_USER_INPUT');
    expect(result.errors[0].extensions).toMatchObject({ field: 'imageBase64' });
    expect(await datasetKeys()).toEqual(before);
  });

  it('counts images per label and per subject from one listing', async () => {
    for (const cell of [cells[1], cells.at(-1)!, cells.at(-2)!]) {
      const added = await h.run(h.keys.SCIENTIST, ADD, {
        input: {
          datasetId,
          label: cell.label,
          imageBase64: cell.bytes.toString('base64'),
          filename: cell.name,
        },
      });
      expect(added.errors).toEqual([]);
    }
    const { data } = await h.run(
      h.keys.SCIENTIST,
      'query($id: ID!) { dataset(id: $id) { imageCount labelCounts { label count } subjectCounts { label count } } }',
      { id: datasetId },
    );
    expect(data!.dataset.imageCount).toBe(4);
    expect(data!.dataset.labelCounts).toEqual([
      { label: 'ALL', count: 2 },
      { label: 'NORMAL', count: 2 },
    ]);
    const perSubject = data!.dataset.subjectCounts as Array<{ label: string; count: number }>;
    expect(perSubject.reduce((sum, s) => sum + s.count, 0)).toBe(4);
  });

  it('checks page sizes against LYMPHOSCOPE_MAX_PAGE_SIZE', async () => {
    const page = (first: number) =>
      h.run(h.keys.SCIENTIST, 'query($first: Int) { datasets(first: $first) { edges { node { id } } } }', {
        first,
      });
    expect((await page(0)).code).toBe('BAD_USER_INPUT');
    expect((await page(101)).code).toBe('BAD_USER_INPUT');
    expect((await page(100)).data!.datasets.edges.length).toBeGreaterThanOrEqual(1);
    expect((await h.run(h.keys.PARTNER, '{ datasets { edges { node { id } } } }')).code).toBe('FORBIDDEN');
  });

  it('hands partners a POST form for predict uploads, and only staff one into a dataset', async () => {
    const UPLOAD =
      'mutation($input: CreateImageUploadInput!) { createImageUpload(input: $input) { uploadId method maxBytes fields { name value } } }';
    const forPredict = await h.run(h.keys.PARTNER, UPLOAD, { input: { contentType: 'image/bmp' } });
    expect(forPredict.data!.createImageUpload).toMatchObject({
      method: 'POST',
      maxBytes: h.services.config.limits.uploadBytes,
    });
    const names = forPredict.data!.createImageUpload.fields.map((f: { name: string }) => f.name);
    expect(names).toEqual(expect.arrayContaining(['key', 'Policy', 'Content-Type']));
    const intoDataset = { datasetId, label: 'ALL', contentType: 'image/bmp' };
    expect((await h.run(h.keys.PARTNER, UPLOAD, { input: intoDataset })).code).toBe('FORBIDDEN');
    expect((await h.run(h.keys.SCIENTIST, UPLOAD, { input: intoDataset })).errors).toEqual([]);
    const noLabel = await h.run(h.keys.SCIENTIST, UPLOAD, { input: { datasetId, contentType: 'image/bmp' } });
    expect(noLabel.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'label' });
  });
});
