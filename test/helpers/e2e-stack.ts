import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../src/local/stack';
import { graphqlClient, ok, waitFor, type GraphqlResult } from './graphql';
import { sampleImages, type SampleImage } from './sample';

export const FINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

export interface E2eStack {
  stack: LocalStack;
  adminKey: string;
  gql: ReturnType<typeof graphqlClient>;
  stop(): Promise<void>;
}

/** The local stack on a fresh data directory, with no demo model, quiet logs and quick worker retries. */
export async function startE2eStack(
  name: string,
  options: Partial<LocalStackOptions> = {},
): Promise<E2eStack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `lymphoscope-e2e-${name}-`));
  const adminKey = `lsk_e2e_${name.replace(/[^a-z0-9]/gi, '_')}_admin_key_0123456789`;
  const stack = await startLocalStack({
    dataDir: dir,
    adminKey,
    demoModel: false,
    logLevel: 'warn',
    workerRetryDelayMs: 200,
    ...options,
  });
  return {
    stack,
    adminKey,
    gql: graphqlClient(stack.url, adminKey),
    async stop() {
      await stack.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The error code of a result that must have failed (throws if it did not). */
export function errorCode(result: GraphqlResult): string | undefined {
  if (!result.errors?.length) throw new Error(`Expected an error, got ${JSON.stringify(result.data)}`);
  return result.errors[0].extensions?.code;
}

/**
 * Copies the real C-NMC sample into the bucket under `prefix` (all/ and hem/, as a lab would) with the
 * project's own S3 client, and imports it into a new dataset. Returns the dataset id and the images.
 */
export async function importSample(
  e2e: E2eStack,
  prefix = 'imports/cnmc',
): Promise<{ datasetId: string; images: SampleImage[]; report: { accepted: number; duplicates: number } }> {
  const images = sampleImages();
  const { store } = e2e.stack.services;
  for (const image of images) {
    await store.put(`${prefix}/${image.label === 'ALL' ? 'all' : 'hem'}/${image.name}`, image.bytes, {
      contentType: 'image/bmp',
    });
  }
  const { createDataset } = ok(
    await e2e.gql('mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }', {
      input: { name: `sample ${prefix}` },
    }),
  );
  const { importImages } = ok(
    await e2e.gql(
      'mutation($input: ImportImagesInput!) { importImages(input: $input) { accepted duplicates rejected { key } } }',
      {
        input: { datasetId: createDataset.id, s3Prefix: prefix },
      },
    ),
  );
  if (importImages.accepted !== images.length)
    throw new Error(`Import accepted ${importImages.accepted} of ${images.length}`);
  return { datasetId: createDataset.id, images, report: importImages };
}

export const JOB_FIELDS =
  'id status epoch epochs progress attempts error modelVersion cancelRequested history { epoch loss valLoss seconds } split { train validation test }';

/** A training job as JOB_FIELDS selects it. */
export interface JobView {
  id: string;
  status: string;
  epoch: number;
  epochs: number;
  progress: number;
  attempts: number;
  error: string | null;
  modelVersion: string | null;
  cancelRequested: boolean;
  history: Array<{ epoch: number; loss: number; valLoss: number; seconds: number }>;
  split: { train: number; validation: number; test: number };
}

export async function readJob(e2e: E2eStack, id: string): Promise<JobView> {
  return ok(
    await e2e.gql<{ trainingJob: JobView }>(`query($id: ID!) { trainingJob(id: $id) { ${JOB_FIELDS} } }`, {
      id,
    }),
  ).trainingJob;
}

/** Polls the job until `until` holds, remembering every epoch seen (to prove it never goes back). */
export async function watchJob(
  e2e: E2eStack,
  id: string,
  until: (job: JobView) => boolean,
  timeoutMs: number,
  seenEpochs: number[] = [],
): Promise<JobView> {
  return waitFor(
    `job ${id}`,
    async () => {
      const job = await readJob(e2e, id);
      if (seenEpochs[seenEpochs.length - 1] !== job.epoch) seenEpochs.push(job.epoch);
      if (until(job)) return job;
      if (FINAL.includes(job.status))
        throw new Error(`Job ended ${job.status} (${job.error}) before the awaited state`);
      return null;
    },
    timeoutMs,
    250,
  );
}

export async function startJob(e2e: E2eStack, input: Record<string, unknown>) {
  return ok(
    await e2e.gql(
      `mutation($input: StartTrainingInput!) { startTraining(input: $input) { ${JOB_FIELDS} } }`,
      { input },
    ),
  ).startTraining;
}
