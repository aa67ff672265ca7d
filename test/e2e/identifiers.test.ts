import { startE2eStack, importSample, type E2eStack } from '../helpers/e2e-stack';
import { ok } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import { registerUntrainedModel } from '../helpers/untrained-model';

/**
 * Subject ids and file names stay at the door: an e2e run over HTTP that sends them every way the API
 * takes them (C-NMC file names in a bulk import, addImage with a name and a subject, a presigned upload
 * with both), then reads the log output of the whole run and every record in the bucket, and finds
 * neither, nor any image bytes in the logs, while subject-grouped splits still see every subject.
 */

const MRN = 'MRN-4417-0032';
const NAMED_FILE = 'DOE_JANE_MRN-4417-0032_cell7.bmp';
const UPLOAD_SUBJECT = 'PATIENT-77821';
const UPLOAD_FILE = 'SMITH_JOHN_1961-04-02.bmp';

let e2e: E2eStack;
const logged: string[] = [];
const writes = {
  out: process.stdout.write.bind(process.stdout),
  err: process.stderr.write.bind(process.stderr),
};

beforeAll(async () => {
  // Everything the process writes from here on, the API handler's JSON logs at debug level included.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    logged.push(String(chunk));
    return writes.out(chunk, ...rest);
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    logged.push(String(chunk));
    return writes.err(chunk, ...rest);
  }) as typeof process.stderr.write;
  e2e = await startE2eStack('identifiers', { logLevel: 'debug' });
  const card = await registerUntrainedModel(e2e.stack.services);
  ok(await e2e.gql('mutation($v: ID!) { promoteModel(version: $v) { version } }', { v: card.version }));
}, 120_000);

afterAll(async () => {
  process.stdout.write = writes.out;
  process.stderr.write = writes.err;
  await e2e?.stop();
});

it('keeps subject ids and file names out of keys, metadata, records and logs; subjects still group', async () => {
  const images = sampleImages();
  const { datasetId } = await importSample(e2e, 'imports/identifiers');
  const extra = images[0];
  ok(
    await e2e.gql('mutation($input: AddImageInput!) { addImage(input: $input) { image { id subjectId } } }', {
      input: {
        datasetId,
        label: 'ALL',
        filename: NAMED_FILE,
        subjectId: MRN,
        // Other bytes than the imported copy, so it is stored as a new image.
        imageBase64: Buffer.concat([extra.bytes, Buffer.from([0])]).toString('base64'),
      },
    }),
  );
  const { createImageUpload } = ok(
    await e2e.gql(
      'mutation($input: CreateImageUploadInput!) { createImageUpload(input: $input) { uploadId } }',
      { input: { contentType: 'image/bmp', filename: UPLOAD_FILE, subjectId: UPLOAD_SUBJECT } },
    ),
  );
  const upload = await e2e.stack.services.docs.get<{ subjectId: string; filename: string | null }>(
    `uploads/${createImageUpload.uploadId}/upload.json`,
  );
  expect(upload!.value).toMatchObject({
    subjectId: e2e.stack.services.pseudonyms.subject(UPLOAD_SUBJECT),
    filename: null,
  });
  const { predict } = ok(
    await e2e.gql('mutation($input: PredictInput!) { predict(input: $input) { id } }', {
      input: { imageBase64: images[1].bytes.toString('base64') },
    }),
  );
  expect(predict.id).toBeTruthy();

  // Splits still group by subject: one pseudonym per C-NMC donor, plus the one named by hand.
  const { dataset } = ok(
    await e2e.gql('query($id: ID!) { dataset(id: $id) { subjectCounts { subjectId count } } }', {
      id: datasetId,
    }),
  );
  const rawSubjects = new Set(images.map((i) => i.name.split('_')[1].toUpperCase()));
  const pseudonyms = new Set(dataset.subjectCounts.map((s: { subjectId: string }) => s.subjectId));
  expect(pseudonyms.size).toBe(rawSubjects.size + 1);
  for (const p of pseudonyms) expect(p).toMatch(/^s-[0-9a-f]{32}$/);
  expect(pseudonyms).toContain(e2e.stack.services.pseudonyms.subject(MRN));

  // What must appear nowhere: the ids as given, and the file names.
  const plain = [
    MRN,
    UPLOAD_SUBJECT,
    NAMED_FILE,
    UPLOAD_FILE,
    'DOE_JANE',
    'SMITH_JOHN',
    ...images.map((i) => i.name),
  ];
  const asValue = [...rawSubjects].map((s) => `"${s}"`);
  const asSegment = [...rawSubjects].map((s) => `/${s}/`);
  const { store } = e2e.stack.services;
  // The bulk import's source files are the lab's own; everything Lymphoscope wrote is checked.
  const objects = (await store.listAll('')).filter((o) => !o.key.startsWith('imports/'));
  // (audit/<yyyy>/<mm>/<dd>/ would match a donor called '11')
  const keys = objects
    .map((o) => o.key)
    .filter((k) => !k.startsWith('audit/'))
    .join('\n');
  const metadata: string[] = [];
  const records: string[] = [];
  for (const o of objects) {
    const object = (await store.get(o.key))!;
    metadata.push(JSON.stringify(object.info.metadata));
    if (/\.jsonl?$/.test(o.key) || /^(prediction-owners|reviews)\//.test(o.key))
      records.push(object.body.toString('utf8'));
  }
  expect(records.length).toBeGreaterThan(images.length);
  const logs = logged.join('');
  expect(logs).toContain('"message":"image added"');
  const found = (where: string, text: string[], needles: string[]) =>
    needles.filter((n) => text.some((t) => t.includes(n))).map((n) => `${n} in ${where}`);
  expect([
    ...found('keys', [keys], [...plain, ...asSegment]),
    ...found('metadata', metadata, [...plain, ...asValue]),
    ...found('records', records, [...plain, ...asValue]),
    ...found('logs', [logs], [...plain, ...asValue]),
  ]).toEqual([]);
  // No image bytes in the logs, in any encoding a logger might use.
  for (const image of [images[0], images[1]]) {
    const middle = image.bytes.subarray(5000, 5048);
    expect(logs).not.toContain(middle.toString('base64'));
    expect(logs).not.toContain(middle.toString('hex'));
    expect(logs).not.toContain(image.bytes.toString('base64').slice(0, 64));
  }
});
