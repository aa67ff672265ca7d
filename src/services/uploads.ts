import { ulid } from 'ulid';
import { badInput, conflict, LymphoscopeError, notFound, tooLarge } from '../errors';
import type { ImageFormat } from '../ml/image/decode';
import type { JsonDocuments } from '../storage/json-documents';
import { layout } from '../storage/layout';
import type { ObjectStore } from '../storage/object-store';
import type { Caller } from './auth';
import type { CellLabel } from './labels';

export interface UploadRecord {
  uploadId: string;
  datasetId: string | null;
  label: CellLabel | null;
  filename: string | null;
  subjectId: string | null;
  contentType: string;
  createdBy: string;
  createdAt: string;
  expiresAt: string;
}

/** What an upload may declare itself to be; the bytes are checked against it when confirmed. */
const CONTENT_TYPES: Record<string, ImageFormat> = {
  'image/bmp': 'bmp',
  'image/x-ms-bmp': 'bmp',
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/tiff': 'tiff',
};

/** Throws BAD_USER_INPUT unless `contentType` is one an upload may declare. */
export function checkUploadContentType(contentType: string): void {
  if (!CONTENT_TYPES[contentType]) {
    throw badInput(`contentType must be one of ${Object.keys(CONTENT_TYPES).join(', ')}.`, {
      field: 'contentType',
    });
  }
}

/**
 * Presigned uploads as stored: the upload record, the bytes that arrive through its POST form, and the
 * create-once confirmation marker (uploads/<uploadId>/...). It knows no dataset and no model: the
 * dataset service confirms an upload into a dataset, the prediction service reads a confirmed one. The
 * caller has validated the intent (dataset, label, subject pseudonym) before `create`.
 */
export class UploadService {
  constructor(
    private readonly store: ObjectStore,
    private readonly docs: JsonDocuments,
    private readonly limits: { uploadBytes: number },
  ) {}

  async create(
    caller: Caller,
    intent: Pick<UploadRecord, 'datasetId' | 'label' | 'subjectId' | 'contentType'>,
    ttlSeconds: number,
  ): Promise<{ upload: UploadRecord; url: string; fields: Record<string, string> }> {
    checkUploadContentType(intent.contentType);
    const now = Date.now();
    const upload: UploadRecord = {
      uploadId: `up-${ulid().toLowerCase()}`,
      datasetId: intent.datasetId,
      label: intent.label,
      filename: null,
      subjectId: intent.subjectId,
      contentType: intent.contentType,
      createdBy: caller.keyId,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttlSeconds * 1000).toISOString(),
    };
    await this.docs.create(layout.upload(upload.uploadId), upload);
    // A POST policy rather than a presigned PUT: a PUT URL signs only the method, key and type, so
    // storage would take a body of any size (1 GB reached the local S3); the policy bounds it.
    const { url, fields } = await this.store.presignPost(layout.uploadObject(upload.uploadId), {
      expiresInSeconds: ttlSeconds,
      contentType: intent.contentType,
      maxBytes: this.limits.uploadBytes,
    });
    return { upload, url, fields };
  }

  async get(caller: Caller, uploadId: string): Promise<UploadRecord> {
    const found = await this.docs.get<UploadRecord>(layout.upload(uploadId));
    // Another caller's upload is reported as missing: ids must not leak across keys.
    if (!found || (found.value.createdBy !== caller.keyId && caller.role === 'PARTNER'))
      throw notFound('Upload', uploadId);
    return found.value;
  }

  /** Reads and validates what arrived at the presigned URL; refuses anything over the limit before reading it. */
  async readBytes(upload: UploadRecord): Promise<Buffer> {
    const key = layout.uploadObject(upload.uploadId);
    const info = await this.store.head(key);
    if (!info)
      throw badInput(
        `Nothing was uploaded for ${upload.uploadId} yet: POST the file with the upload's form first.`,
      );
    if (info.size > this.limits.uploadBytes) {
      await this.store.delete(key);
      throw tooLarge(`The upload is ${info.size} bytes; the limit is ${this.limits.uploadBytes}.`, {
        limit: this.limits.uploadBytes,
      });
    }
    const object = await this.store.get(key);
    if (!object) throw badInput(`Nothing was uploaded for ${upload.uploadId} yet.`);
    return object.body;
  }

  /** Creates the confirmation marker once (If-None-Match): exactly one confirmation wins, the others get CONFLICT. */
  async claimConfirmation(caller: Caller, uploadId: string): Promise<void> {
    try {
      await this.docs.create(layout.uploadConfirmation(uploadId), {
        by: caller.keyId,
        at: new Date().toISOString(),
      });
    } catch (error) {
      if (error instanceof LymphoscopeError && error.code === 'CONFLICT') {
        throw conflict(`Upload ${uploadId} was already confirmed.`);
      }
      throw error;
    }
  }

  /** Removes the confirmation marker, so the upload may be confirmed again. */
  releaseConfirmation(uploadId: string): Promise<void> {
    return this.store.delete(layout.uploadConfirmation(uploadId));
  }

  /** Removes the uploaded bytes (consumed into a dataset, or refused). */
  deleteBytes(uploadId: string): Promise<void> {
    return this.store.delete(layout.uploadObject(uploadId));
  }

  /** Bytes of a confirmed upload without a dataset, for predict(uploadId). */
  async readConfirmed(caller: Caller, uploadId: string): Promise<Buffer> {
    const upload = await this.get(caller, uploadId);
    if (upload.datasetId)
      throw badInput(`Upload ${uploadId} went to a dataset; predict it with datasetId and imageId.`);
    if (!(await this.store.head(layout.uploadConfirmation(uploadId)))) {
      throw badInput(`Upload ${uploadId} is not confirmed yet: call confirmImageUpload first.`);
    }
    return this.readBytes(upload);
  }
}
