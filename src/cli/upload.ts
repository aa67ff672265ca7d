import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Progress } from './progress';

/**
 * `lymphoscope upload <folder> --dataset <id>`: adds a C-NMC style folder (all/ = ALL, hem/ = NORMAL)
 * to a dataset through the API, the way a lab without the AWS CLI would: for each image
 * createImageUpload, then the bytes straight to storage in the presigned POST form the API returned,
 * then confirmImageUpload, which validates the image. Files that are not images (MANIFEST.csv,
 * NOTICE.md) are skipped with a note; images the API refuses are listed with its reason.
 */

export interface UploadOptions {
  folder: string;
  datasetId: string;
  apiUrl: string;
  apiKey: string;
  /** Uploads in flight at once (default 4). */
  concurrency?: number;
  /** Where the summary and notes go (default stdout); progress goes to stderr. */
  out?: NodeJS.WritableStream;
}

export interface UploadReport {
  uploaded: number;
  duplicates: number;
  rejected: Array<{ file: string; code: string; reason: string }>;
  /** Paths (relative to the folder) that are not images, or not under all/ or hem/. */
  skipped: string[];
}

const CONTENT_TYPES: Record<string, string> = {
  '.bmp': 'image/bmp',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};
const LABELS = { all: 'ALL', hem: 'NORMAL' } as const;

/** createImageUpload's answer: a presigned POST form (an S3 POST policy) for one file. */
interface PresignedUpload {
  uploadId: string;
  url: string;
  /** key, Content-Type, policy and signature, in the order storage expects them. */
  fields: Array<{ name: string; value: string }>;
}

class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Lists what will be uploaded and what is skipped, without reading any image. */
export async function planUpload(folder: string): Promise<{
  images: Array<{ file: string; relative: string; label: 'ALL' | 'NORMAL'; contentType: string }>;
  skipped: string[];
}> {
  const images: Array<{ file: string; relative: string; label: 'ALL' | 'NORMAL'; contentType: string }> = [];
  const skipped: string[] = [];
  const top = await readdir(folder, { withFileTypes: true }).catch(() => {
    throw new Error(`Cannot read the folder ${folder}.`);
  });
  for (const entry of top.sort((a, b) => a.name.localeCompare(b.name))) {
    const label = LABELS[entry.name as keyof typeof LABELS];
    if (!entry.isDirectory() || !label) {
      skipped.push(entry.isDirectory() ? `${entry.name}/` : entry.name);
      continue;
    }
    for (const name of (await readdir(path.join(folder, entry.name))).sort()) {
      const file = path.join(folder, entry.name, name);
      const contentType = CONTENT_TYPES[path.extname(name).toLowerCase()];
      if (contentType && (await stat(file)).isFile()) {
        images.push({ file, relative: `${entry.name}/${name}`, label, contentType });
      } else {
        skipped.push(`${entry.name}/${name}`);
      }
    }
  }
  if (images.length === 0) {
    throw new Error(`No images under ${folder}/all or ${folder}/hem (BMP, PNG, JPEG or TIFF).`);
  }
  return { images, skipped };
}

export async function uploadFolder(options: UploadOptions): Promise<UploadReport> {
  const out = options.out ?? process.stdout;
  const { images, skipped } = await planUpload(options.folder);
  if (skipped.length) {
    out.write(`Skipping ${skipped.length} that are not images in all/ or hem/: ${skipped.join(', ')}\n`);
  }
  const gql = graphql(options.apiUrl, options.apiKey);
  // Fails early, before any upload, on a wrong URL, key or dataset id.
  const { dataset } = await gql<{ dataset: { name: string; imageCount: number } | null }>(
    'query($id: ID!) { dataset(id: $id) { name imageCount } }',
    { id: options.datasetId },
  );
  if (!dataset) throw new Error(`No dataset ${options.datasetId}: create it first (createDataset).`);

  const report: UploadReport = { uploaded: 0, duplicates: 0, rejected: [], skipped };
  const progress = new Progress();
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < images.length) {
      const image = images[next++];
      try {
        const duplicate = await uploadOne(gql, options.datasetId, image);
        if (duplicate) report.duplicates += 1;
        else report.uploaded += 1;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        report.rejected.push({ file: image.relative, code: error.code, reason: error.message });
        progress.line(`rejected ${image.relative}: ${error.code} ${error.message}`);
      }
      done += 1;
      progress.update(done / images.length, `uploading ${done}/${images.length} to ${dataset.name}`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, lane));
  progress.done();
  out.write(
    `Uploaded ${report.uploaded} new images to dataset ${options.datasetId} (${dataset.name}); ` +
      `${report.duplicates} were already there, ${report.rejected.length} rejected.\n`,
  );
  return report;
}

async function uploadOne(
  gql: ReturnType<typeof graphql>,
  datasetId: string,
  image: { file: string; relative: string; label: 'ALL' | 'NORMAL'; contentType: string },
): Promise<boolean> {
  const { createImageUpload: upload } = await gql<{ createImageUpload: PresignedUpload }>(
    `mutation($input: CreateImageUploadInput!) {
      createImageUpload(input: $input) { uploadId url fields { name value } }
    }`,
    {
      input: {
        datasetId,
        label: image.label,
        filename: path.basename(image.file),
        contentType: image.contentType,
      },
    },
  );
  const bytes = await readFile(image.file);
  await sendToStorage(upload, image.contentType, bytes, path.basename(image.file));
  const { confirmImageUpload } = await gql<{ confirmImageUpload: { duplicate: boolean } }>(
    'mutation($id: ID!) { confirmImageUpload(uploadId: $id) { duplicate } }',
    { id: upload.uploadId },
  );
  return confirmImageUpload.duplicate;
}

/**
 * POSTs the bytes as a browser form would (S3's presigned POST): every signed field in order, then the
 * file as the last part, which S3 requires. The policy fixes the Content-Type and bounds the size, so
 * storage itself refuses anything else.
 */
async function sendToStorage(
  upload: PresignedUpload,
  contentType: string,
  bytes: Buffer,
  filename: string,
): Promise<void> {
  const form = new FormData();
  for (const { name, value } of upload.fields) form.append(name, value);
  form.append('file', new Blob([new Uint8Array(bytes)], { type: contentType }), filename);
  const response = await fetch(upload.url, { method: 'POST', body: form });
  if (!response.ok) {
    const text = await response.text();
    const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? `HTTP ${response.status}`;
    throw new ApiError(code, `storage refused the upload (${response.status}).`);
  }
}

/** A GraphQL client over fetch: data, or an ApiError carrying the first error's code and message. */
function graphql(url: string, apiKey: string) {
  return async <T>(query: string, variables: Record<string, unknown>): Promise<T> => {
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
        body: JSON.stringify({ query, variables }),
      });
    } catch (error) {
      throw new Error(`Cannot reach the API at ${url} (${(error as Error).message}). Is it running?`);
    }
    const body = (await response.json().catch(() => null)) as {
      data?: T;
      errors?: Array<{ message: string; extensions?: { code?: string } }>;
    } | null;
    const first = body?.errors?.[0];
    if (first) {
      const code = first.extensions?.code ?? 'ERROR';
      // A wrong key or role stops the whole upload; a bad image is one rejection among many.
      if (code === 'UNAUTHENTICATED' || code === 'FORBIDDEN') throw new Error(`${code}: ${first.message}`);
      throw new ApiError(code, first.message);
    }
    if (!body?.data) throw new Error(`The API at ${url} answered ${response.status} without data.`);
    return body.data;
  };
}
