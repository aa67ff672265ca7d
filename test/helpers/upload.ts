/** What createImageUpload hands out: a URL and the signed form fields to POST before the file. */
export interface UploadGrant {
  url: string;
  fields: { name: string; value: string }[];
}

/** The selection to ask createImageUpload for, to POST through `postUpload`. */
export const UPLOAD_GRANT = 'url method fields { name value }';

/**
 * Uploads `bytes` as a browser form does (multipart/form-data: the grant's fields, then the file
 * last), over real HTTP to the storage the grant names. S3 answers 204 when it took the file.
 */
export async function postUpload(
  grant: UploadGrant,
  bytes: Uint8Array,
  contentType: string,
  filename = 'cell',
): Promise<Response> {
  const form = new FormData();
  for (const field of grant.fields) form.append(field.name, field.value);
  form.append('file', new Blob([new Uint8Array(bytes)], { type: contentType }), filename);
  return fetch(grant.url, { method: 'POST', body: form });
}
