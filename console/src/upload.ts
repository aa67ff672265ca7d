import { gql, type Client, type TypedDocumentNode } from '@urql/core';
import { ApiError, run } from './api';
import { h, replaceChildren } from './dom';

/**
 * Adding images to a dataset from the browser: pick files (or a whole C-NMC folder), and each goes
 * straight to storage through a presigned upload (createImageUpload, the POST form it returns, then
 * confirmImageUpload, which validates it), as `lymphoscope upload` does from a terminal. Files that are
 * not images (MANIFEST.csv, NOTICE.md) are skipped with a note; rejected images show the API's reason.
 */

type Label = 'ALL' | 'NORMAL';
interface DatasetOption {
  id: string;
  name: string;
  imageCount: number;
}
/** createImageUpload's answer: a presigned POST form (an S3 POST policy) for one file. */
interface PresignedUpload {
  uploadId: string;
  url: string;
  /** key, Content-Type, policy and signature, in the order storage expects them. */
  fields: Array<{ name: string; value: string }>;
}

const DATASETS: TypedDocumentNode<
  { datasets: { edges: Array<{ node: DatasetOption }> } },
  Record<string, never>
> = gql`
  query ConsoleDatasets {
    datasets(first: 50) {
      edges {
        node {
          id
          name
          imageCount
        }
      }
    }
  }
`;

const CREATE_UPLOAD: TypedDocumentNode<
  { createImageUpload: PresignedUpload },
  { input: { datasetId: string; label: Label; filename: string; contentType: string } }
> = gql`
  mutation ConsoleCreateUpload($input: CreateImageUploadInput!) {
    createImageUpload(input: $input) {
      uploadId
      url
      fields {
        name
        value
      }
    }
  }
`;

const CONFIRM_UPLOAD: TypedDocumentNode<
  { confirmImageUpload: { duplicate: boolean } },
  { uploadId: string }
> = gql`
  mutation ConsoleConfirmUpload($uploadId: ID!) {
    confirmImageUpload(uploadId: $uploadId) {
      duplicate
    }
  }
`;

const CONTENT_TYPES: Record<string, string> = {
  bmp: 'image/bmp',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  tif: 'image/tiff',
  tiff: 'image/tiff',
};

/**
 * The label of a file when the user lets the names decide: a C-NMC name ends in _all or _hem, and a
 * folder upload has all/ or hem/ in its path. Null when neither says.
 */
export function labelFromName(path: string): Label | null {
  const lower = path.toLowerCase();
  if (/(^|\/)all\//.test(lower) || /_all\.[a-z]+$/.test(lower)) return 'ALL';
  if (/(^|\/)hem\//.test(lower) || /_hem\.[a-z]+$/.test(lower)) return 'NORMAL';
  return null;
}

export function renderUpload(root: HTMLElement, client: Client, onUnauthenticated: () => void): void {
  const datasetSelect = h('select', { id: 'upload-dataset', name: 'dataset' });
  const labelSelect = h(
    'select',
    { id: 'upload-label', name: 'label' },
    h('option', { value: 'name' }, 'From the names (all/ or …_all = ALL, hem/ or …_hem = Normal)'),
    h('option', { value: 'ALL' }, 'ALL'),
    h('option', { value: 'NORMAL' }, 'Normal'),
  );
  const files = h('input', { id: 'upload-files', type: 'file', multiple: true, name: 'files' });
  const start = h('button', { id: 'upload-start', type: 'submit' }, 'Upload');
  const status = h('p', { class: 'status', role: 'status', id: 'upload-status' }, 'Loading datasets…');
  const results = h('ul', { id: 'upload-results', class: 'upload-results' });
  const form = h(
    'form',
    { class: 'upload-form' },
    h('label', {}, 'Dataset ', datasetSelect),
    h('label', {}, 'Label ', labelSelect),
    h('label', {}, 'Images ', files),
    start,
  );
  replaceChildren(
    root,
    h('section', { class: 'page' }, h('h1', {}, 'Add images to a dataset'), form, status, results),
  );

  const fail = (error: unknown) => {
    if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') return onUnauthenticated();
    status.textContent = error instanceof Error ? error.message : String(error);
  };

  run(client, 'query', DATASETS, {})
    .then(({ datasets }) => {
      const options = datasets.edges.map(({ node }) =>
        h('option', { value: node.id }, `${node.name} (${node.imageCount} images)`),
      );
      replaceChildren(datasetSelect, ...options);
      status.textContent = options.length
        ? 'Choose images and press Upload.'
        : 'No dataset yet: create one with createDataset (docs/API.md).';
      start.disabled = options.length === 0;
    })
    .catch(fail);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void upload().catch(fail);
  });

  async function upload() {
    const datasetId = datasetSelect.value;
    const chosen = Array.from(files.files ?? []);
    if (!datasetId || chosen.length === 0) {
      status.textContent = 'Choose a dataset and at least one image.';
      return;
    }
    start.disabled = true;
    results.replaceChildren();
    const tally = { uploaded: 0, duplicates: 0, rejected: 0, skipped: 0 };
    const note = (text: string, kind: string) => results.append(h('li', { class: kind }, text));
    for (const [i, file] of chosen.entries()) {
      const path = file.webkitRelativePath || file.name;
      status.textContent = `Uploading ${i + 1} of ${chosen.length}…`;
      const contentType = CONTENT_TYPES[file.name.split('.').pop()?.toLowerCase() ?? ''];
      const label = labelSelect.value === 'name' ? labelFromName(path) : (labelSelect.value as Label);
      if (!contentType) {
        tally.skipped++;
        note(`${path}: skipped, not an image (BMP, PNG, JPEG or TIFF)`, 'skipped');
        continue;
      }
      if (!label) {
        tally.skipped++;
        note(`${path}: skipped, its name says no label: choose ALL or Normal`, 'skipped');
        continue;
      }
      try {
        const { createImageUpload: presigned } = await run(client, 'mutation', CREATE_UPLOAD, {
          input: { datasetId, label, filename: file.name, contentType },
        });
        await sendToStorage(presigned, file);
        const { confirmImageUpload } = await run(client, 'mutation', CONFIRM_UPLOAD, {
          uploadId: presigned.uploadId,
        });
        if (confirmImageUpload.duplicate) tally.duplicates++;
        else tally.uploaded++;
        note(`${path}: ${confirmImageUpload.duplicate ? 'already there' : 'added'} as ${label}`, 'added');
      } catch (error) {
        if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') return onUnauthenticated();
        tally.rejected++;
        note(`${path}: rejected, ${error instanceof Error ? error.message : String(error)}`, 'rejected');
      }
    }
    status.textContent =
      `Done: ${tally.uploaded} added, ${tally.duplicates} already there, ` +
      `${tally.rejected} rejected, ${tally.skipped} skipped.`;
    start.disabled = false;
  }
}

/**
 * The file to storage in the form the API presigned (S3's presigned POST): every signed field in order,
 * then the file as the last part, which S3 requires. The policy fixes the Content-Type and bounds the
 * size, so storage itself refuses anything else.
 */
async function sendToStorage(upload: PresignedUpload, file: File): Promise<void> {
  const form = new FormData();
  for (const { name, value } of upload.fields) form.append(name, value);
  form.append('file', file);
  const response = await fetch(upload.url, { method: 'POST', body: form });
  if (!response.ok) throw new ApiError(`storage refused the upload (HTTP ${response.status}).`, null);
}
