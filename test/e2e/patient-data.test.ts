import { layout } from '../../src/storage/layout';
import { startE2eStack, errorCode, type E2eStack } from '../helpers/e2e-stack';
import { graphqlClient, ok } from '../helpers/graphql';
import { sampleImages } from '../helpers/sample';
import { registerUntrainedModel } from '../helpers/untrained-model';

/**
 * Deletion, erasure and export over HTTP against the local stack, each checked on a listing of every
 * object VERSION in the bucket before and after (the local S3 keeps one version per key: see
 * s3rver-compat.ts; the call path is ListObjectVersions + DeleteObjects with version ids, as on AWS).
 * Each call runs a job for 1 ms here, so every job stops after its first step and is finished by
 * resumeDataJob: the resumable path is the one tested.
 */

type Client = ReturnType<typeof graphqlClient>;
const JOB =
  'id kind target status remainingSteps objectsDeleted versionsDeleted kept exportedPredictions exportedImages downloads { name url }';

let e2e: E2eStack;
let admin: Client;
const clients = {} as Record<'partnerA' | 'partnerB' | 'scientist', Client>;
const ids = {} as Record<'partnerA' | 'partnerB' | 'scientist', string>;
const cells = sampleImages();

beforeAll(async () => {
  e2e = await startE2eStack('patient-data', { env: { LYMPHOSCOPE_DATA_JOB_BUDGET_MS: '1' } });
  admin = e2e.gql;
  for (const [name, role] of [
    ['partnerA', 'PARTNER'],
    ['partnerB', 'PARTNER'],
    ['scientist', 'SCIENTIST'],
  ] as const) {
    const { createApiKey } = ok(
      await admin(
        'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } secret } }',
        { input: { name, role } },
      ),
    );
    ids[name] = createApiKey.apiKey.id;
    clients[name] = graphqlClient(e2e.stack.url, createApiKey.secret);
  }
  // Every prediction waits for a review, so each has a review marker to delete too.
  const card = await registerUntrainedModel(e2e.stack.services, { reviewLow: 0, reviewHigh: 1 });
  ok(await admin('mutation($v: ID!) { promoteModel(version: $v) { version } }', { v: card.version }));
}, 120_000);

afterAll(() => e2e?.stop());

/** Every stored version in the bucket, as `key@versionId`. */
async function versions(): Promise<string[]> {
  return (await e2e.stack.services.store.listVersions('')).map((v) => `${v.key}@${v.versionId}`).sort();
}

async function predict(client: Client, cell = cells[0]): Promise<string> {
  const { predict } = ok(
    await client('mutation($input: PredictInput!) { predict(input: $input) { id needsReview } }', {
      input: { imageBase64: cell.bytes.toString('base64') },
    }),
  );
  expect(predict.needsReview).toBe(true);
  return predict.id;
}

/** Calls resumeDataJob until the job is done; returns it and how many calls that took. */
async function finish(client: Client, job: { id: string; status: string }) {
  let current = job;
  let calls = 0;
  while (current.status === 'RUNNING') {
    current = ok(
      await client(`mutation($id: ID!) { resumeDataJob(id: $id) { ${JOB} } }`, { id: job.id }),
    ).resumeDataJob;
    calls += 1;
    if (calls > 20) throw new Error(`Job ${job.id} did not finish`);
  }
  return { job: current as Record<string, unknown> & { status: string }, calls };
}

const touching = (all: string[], id: string) => all.filter((v) => v.includes(id));

describe('deletePrediction', () => {
  it("removes every version of a partner's prediction, resumably, and nothing else", async () => {
    const doomed = await predict(clients.partnerA, cells[0]);
    const other = await predict(clients.partnerA, cells[1]);
    const before = await versions();
    const mine = touching(before, doomed);
    // image, heat map, record, owner index, review marker
    expect(mine.map((v) => v.split('@')[0]).sort()).toEqual(
      [
        layout.prediction(ids.partnerA, doomed),
        layout.predictionHeatmap(ids.partnerA, doomed),
        layout.predictionImage(ids.partnerA, doomed, 'bmp'),
        layout.predictionOwner(doomed),
        layout.pendingReview(doomed),
      ].sort(),
    );

    // Another partner: NOT_FOUND, and the bucket is exactly as it was.
    const foreign = await clients.partnerB(`mutation($id: ID!) { deletePrediction(id: $id) { ${JOB} } }`, {
      id: doomed,
    });
    expect(errorCode(foreign)).toBe('NOT_FOUND');
    expect(await versions()).toEqual(before);

    const first = ok(
      await clients.partnerA(`mutation($id: ID!) { deletePrediction(id: $id) { ${JOB} } }`, { id: doomed }),
    ).deletePrediction;
    expect(first).toMatchObject({
      kind: 'DELETE_PREDICTION',
      target: doomed,
      status: 'RUNNING',
      remainingSteps: 2,
    });
    // Half way: the other partner can neither run nor see the job.
    expect(
      errorCode(
        await clients.partnerB(`mutation($id: ID!) { resumeDataJob(id: $id) { ${JOB} } }`, { id: first.id }),
      ),
    ).toBe('NOT_FOUND');
    expect(
      ok(await clients.partnerB('query($id: ID!) { dataJob(id: $id) { id } }', { id: first.id })).dataJob,
    ).toBeNull();

    const { job, calls } = await finish(clients.partnerA, first);
    expect(calls).toBe(2);
    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      remainingSteps: 0,
      objectsDeleted: 5,
      versionsDeleted: 5,
    });

    const after = await versions();
    // Only the job's own record still names the prediction.
    expect(touching(after, doomed)).toEqual([`${layout.dataJob(first.id)}@null`]);
    expect(touching(after, other)).toEqual(touching(before, other));
    // Only the prediction's versions went; the job record and the audit record came.
    const gone = before.filter((v) => !after.includes(v));
    expect(gone.sort()).toEqual(mine.sort());
    const added = after.filter((v) => !before.includes(v)).map((v) => v.split('@')[0]);
    expect(added.filter((k) => !k.startsWith('audit/'))).toEqual([layout.dataJob(first.id)]);

    const read = await clients.partnerA('query($id: ID!) { prediction(id: $id) { id } }', { id: doomed });
    expect(errorCode(read)).toBe('NOT_FOUND');

    // Idempotent: asked again, it succeeds and finds nothing more to remove.
    const again = await finish(
      clients.partnerA,
      ok(
        await clients.partnerA(`mutation($id: ID!) { deletePrediction(id: $id) { ${JOB} } }`, { id: doomed }),
      ).deletePrediction,
    );
    expect(again.job).toMatchObject({ status: 'SUCCEEDED', objectsDeleted: 5, versionsDeleted: 5 });
    // And still invisible to the other partner, whose own ids are unaffected.
    expect(
      errorCode(
        await clients.partnerB(`mutation($id: ID!) { deletePrediction(id: $id) { ${JOB} } }`, { id: doomed }),
      ),
    ).toBe('NOT_FOUND');

    // Audited: who, what, how many; no image.
    const { auditLog } = ok(
      await admin('{ auditLog(first: 100) { edges { node { actor action target after } } } }'),
    );
    const records = auditLog.edges
      .map((e: { node: Record<string, string> }) => e.node)
      .filter((n: { action: string }) => n.action === 'data.delete_prediction');
    expect(records.length).toBeGreaterThanOrEqual(1);
    expect(records[0]).toMatchObject({ actor: `${ids.partnerA} (partner)`, target: doomed });
    expect(JSON.parse(records[0].after)).toMatchObject({ objectsDeleted: 5, versionsDeleted: 5 });
    expect(JSON.stringify(auditLog)).not.toContain(cells[0].bytes.toString('base64').slice(0, 40));
  });
});

describe('a deletion whose runner died half way', () => {
  it("is left alone while the dead runner's lease lasts, then resumed to the end", async () => {
    const doomed = await predict(clients.partnerA, cells[6]);
    const first = ok(
      await clients.partnerA(`mutation($id: ID!) { deletePrediction(id: $id) { ${JOB} } }`, { id: doomed }),
    ).deletePrediction;
    expect(first).toMatchObject({ status: 'RUNNING', remainingSteps: 2 });
    // What a process killed in the middle of the next step leaves in S3: the job RUNNING with its lease
    // held, and the step's work half done (the image removed, the rest not).
    const { docs, store } = e2e.stack.services;
    const key = layout.dataJob(first.id);
    const lease = (until: number) => (job: Record<string, unknown>) => ({
      ...job,
      lease: { owner: 'runner-that-died', until: new Date(until).toISOString() },
    });
    await docs.update(key, lease(Date.now() + 600_000));
    await store.deleteVersions([
      { key: layout.predictionImage(ids.partnerA, doomed, 'bmp'), versionId: 'null' },
    ]);
    const halfDone = await versions();

    // Nobody runs it twice at once: while the lease lasts, a resume changes nothing.
    const blocked = ok(
      await clients.partnerA(`mutation($id: ID!) { resumeDataJob(id: $id) { ${JOB} } }`, { id: first.id }),
    ).resumeDataJob;
    expect(blocked).toMatchObject({ status: 'RUNNING', remainingSteps: 2 });
    expect(await versions()).toEqual(halfDone);

    await docs.update(key, lease(Date.now() - 1000));
    const { job } = await finish(clients.partnerA, blocked);
    // Heat map and record, then the owner index, after the review marker the first call removed. The
    // image the dead runner removed is not counted: counts are what a run saw (docs/DATA.md).
    expect(job).toMatchObject({ status: 'SUCCEEDED', objectsDeleted: 4, versionsDeleted: 4 });
    expect(touching(await versions(), doomed)).toEqual([`${key}@null`]);
  });
});

describe('deleteDataset', () => {
  it('removes a dataset, keeping what a model version was trained on unless an admin says otherwise', async () => {
    const { createDataset } = ok(
      await clients.scientist('mutation { createDataset(input: { name: "to delete" }) { id } }'),
    );
    const datasetId = createDataset.id as string;
    const keys: string[] = [];
    for (const cell of cells.slice(0, 3)) {
      const { addImage } = ok(
        await clients.scientist(
          'mutation($input: AddImageInput!) { addImage(input: $input) { image { id } } }',
          { input: { datasetId, label: cell.label, imageBase64: cell.bytes.toString('base64') } },
        ),
      );
      const found = await e2e.stack.services.datasets.findImage(datasetId, addImage.image.id);
      keys.push(found!.key);
    }
    // A model version trained on a snapshot listing the first image (as a training job leaves it).
    const { docs, models } = e2e.stack.services;
    const snapshotKey = layout.snapshot(datasetId, 'job-pinned');
    await docs.create(snapshotKey, {
      snapshotId: 'job-pinned',
      datasetId,
      createdAt: new Date().toISOString(),
      items: [{ key: keys[0], imageId: 'x', label: 1, subjectId: null, split: 'train' }],
    });
    const pinnedCard = await registerUntrainedModel(e2e.stack.services, { notes: 'pins a snapshot' });
    await docs.update(layout.modelFile(pinnedCard.version, 'card.json'), (card: typeof pinnedCard) => ({
      ...card,
      lineage: { ...card.lineage, datasetId, snapshotId: 'job-pinned' },
    }));
    expect((await models.require(pinnedCard.version)).lineage.snapshotId).toBe('job-pinned');

    const before = await versions();
    const inDataset = touching(before, `datasets/${datasetId}/`);
    // dataset.json, 3 images, 3 duplicate markers, 1 snapshot
    expect(inDataset).toHaveLength(8);

    expect(
      errorCode(
        await clients.partnerA(`mutation($id: ID!) { deleteDataset(id: $id) { ${JOB} } }`, { id: datasetId }),
      ),
    ).toBe('FORBIDDEN');
    expect(
      errorCode(
        await clients.scientist(
          `mutation($id: ID!) { deleteDataset(id: $id, includePinned: true) { ${JOB} } }`,
          { id: datasetId },
        ),
      ),
    ).toBe('FORBIDDEN');
    expect(await versions()).toEqual(before);

    const { job } = await finish(
      clients.scientist,
      ok(
        await clients.scientist(`mutation($id: ID!) { deleteDataset(id: $id) { ${JOB} } }`, {
          id: datasetId,
        }),
      ).deleteDataset,
    );
    expect(job).toMatchObject({ status: 'SUCCEEDED', objectsDeleted: 6, versionsDeleted: 6 });
    expect((job.kept as string[])[0]).toContain(pinnedCard.version);
    const after = await versions();
    expect(
      touching(after, `datasets/${datasetId}/`)
        .map((v) => v.split('@')[0])
        .sort(),
    ).toEqual([keys[0], snapshotKey].sort());
    expect(
      ok(await clients.scientist('query($id: ID!) { dataset(id: $id) { id } }', { id: datasetId })).dataset,
    ).toBeNull();
    // The model version keeps its card and weights.
    expect(touching(after, `models/${pinnedCard.version}/card.json`)).toHaveLength(1);

    const { job: all } = await finish(
      admin,
      ok(
        await admin(`mutation($id: ID!) { deleteDataset(id: $id, includePinned: true) { ${JOB} } }`, {
          id: datasetId,
        }),
      ).deleteDataset,
    );
    expect(all).toMatchObject({ status: 'SUCCEEDED', objectsDeleted: 8, kept: [] });
    expect(touching(await versions(), `datasets/${datasetId}/`)).toEqual([]);
    expect(errorCode(await clients.scientist(`mutation { deleteDataset(id: "ds-never-was") { id } }`))).toBe(
      'NOT_FOUND',
    );
  });
});

describe('exportPartnerData', () => {
  it("hands a partner its predictions and reviews as JSON Lines with its images, and nobody else's", async () => {
    const reviewed = await predict(clients.partnerA, cells[2]);
    ok(
      await clients.scientist('mutation($input: SubmitReviewInput!) { submitReview(input: $input) { id } }', {
        input: { predictionId: reviewed, label: 'ALL', note: 'blast' },
      }),
    );
    const theirs = await predict(clients.partnerB, cells[3]);
    const before = await versions();

    const foreign = await clients.partnerA(
      `mutation($p: ID!) { exportPartnerData(partnerId: $p) { ${JOB} } }`,
      { p: ids.partnerB },
    );
    expect(errorCode(foreign)).toBe('NOT_FOUND');
    expect(await versions()).toEqual(before);

    const { job } = await finish(
      clients.partnerA,
      ok(
        await clients.partnerA(
          `mutation($p: ID!) { exportPartnerData(partnerId: $p, includeImages: true) { ${JOB} } }`,
          { p: ids.partnerA },
        ),
      ).exportPartnerData,
    );
    const ownIds = touching(before, `predictions/${ids.partnerA}/`)
      .map((v) => v.split('@')[0])
      .filter((k) => k.endsWith('.json'))
      .map((k) => k.split('/').pop()!.replace('.json', ''));
    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      exportedPredictions: ownIds.length,
      exportedImages: ownIds.length,
    });
    const downloads = job.downloads as Array<{ name: string; url: string }>;
    const jsonl = downloads.find((d) => d.name === 'predictions.jsonl')!;
    const lines = (await (await fetch(jsonl.url)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id).sort()).toEqual(ownIds.sort());
    expect(lines.find((l) => l.id === reviewed).review).toMatchObject({ label: 'ALL', note: 'blast' });
    expect(JSON.stringify(lines)).not.toContain(theirs);
    const image = downloads.find((d) => d.name === lines.find((l) => l.id === reviewed).image)!;
    expect(Buffer.from(await (await fetch(image.url)).arrayBuffer()).equals(cells[2].bytes)).toBe(true);

    // The other partner sees neither the job nor its files.
    expect(
      ok(await clients.partnerB('query($id: ID!) { dataJob(id: $id) { id } }', { id: job.id })).dataJob,
    ).toBeNull();
    const created = (await versions()).filter((v) => !before.includes(v)).map((v) => v.split('@')[0]);
    expect(
      created
        .filter((k) => !k.startsWith('audit/') && !k.startsWith('data-jobs/'))
        .every((k) => k.startsWith(layout.exportsPrefix(ids.partnerA))),
    ).toBe(true);
  });
});

describe('erasePartnerData', () => {
  it("removes every version of everything of one partner and nothing of another's", async () => {
    await predict(clients.partnerA, cells[4]);
    const { createImageUpload } = ok(
      await clients.partnerA(
        'mutation { createImageUpload(input: { contentType: "image/bmp" }) { uploadId url } }',
      ),
    );
    // The bytes as the upload URL would have stored them.
    await e2e.stack.services.store.put(layout.uploadObject(createImageUpload.uploadId), cells[5].bytes);
    await predict(clients.partnerB, cells[5]);
    const before = await versions();
    const ofA = (all: string[]) => {
      const predictionIds = all
        .filter((v) => v.startsWith(`predictions/${ids.partnerA}/`))
        .map((v) => v.split('/')[2].split('.')[0]);
      return all.filter(
        (v) =>
          v.startsWith(`predictions/${ids.partnerA}/`) ||
          v.startsWith(`exports/${ids.partnerA}/`) ||
          v.startsWith(`uploads/${createImageUpload.uploadId}/`) ||
          predictionIds.some(
            (id) => v.startsWith(`prediction-owners/${id}@`) || v.startsWith(`reviews/pending/${id}@`),
          ),
      );
    };
    const doomed = ofA(before);
    expect(doomed.length).toBeGreaterThan(10);
    const kept = before.filter((v) => !doomed.includes(v));

    expect(
      errorCode(
        await clients.partnerA(`mutation($p: ID!) { erasePartnerData(partnerId: $p) { id } }`, {
          p: ids.partnerA,
        }),
      ),
    ).toBe('FORBIDDEN');
    expect(await versions()).toEqual(before);

    const { job } = await finish(
      admin,
      ok(await admin(`mutation($p: ID!) { erasePartnerData(partnerId: $p) { ${JOB} } }`, { p: ids.partnerA }))
        .erasePartnerData,
    );
    expect(job).toMatchObject({
      status: 'SUCCEEDED',
      objectsDeleted: doomed.length,
      versionsDeleted: doomed.length,
    });
    const after = await versions();
    expect(ofA(after)).toEqual([]);
    // Everything else, the other partner's predictions included, is still there.
    expect(kept.filter((v) => !after.includes(v))).toEqual([]);
    const { predictions } = ok(
      await clients.partnerA('{ predictions(first: 10) { edges { node { id } } } }'),
    );
    expect(predictions.edges).toEqual([]);
    const { predictions: stillB } = ok(
      await clients.partnerB('{ predictions(first: 10) { edges { node { id } } } }'),
    );
    expect(stillB.edges.length).toBeGreaterThan(0);
  });
});
