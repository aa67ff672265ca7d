import { createHash } from 'node:crypto';
import { ulid } from 'ulid';
import { badInput, LymphoscopeError, notFound } from '../errors';
import { decodeImage, type ImageFormat } from '../ml/image/decode';
import { imageLimits, type ImageLimitsConfig } from './image-limits';
import { parseCnmcFilename } from '../ml/data/splits';
import type { JsonDocuments } from '../storage/json-documents';
import { layout, parseImageKey } from '../storage/layout';
import { PreconditionFailed, type ObjectStore } from '../storage/object-store';
import type { Logger } from '../observability/log';
import { folderToLabel, labelToFolder, validateSubjectId, type CellLabel } from './labels';
import { pageOf, type Page } from './pagination';
import type { AuditLog } from './audit';
import type { Caller } from './auth';
import { Pseudonyms } from './pseudonyms';
import { checkUploadContentType, UploadService, type UploadRecord } from './uploads';

export interface DatasetRecord {
  id: string;
  name: string;
  description: string | null;
  createdAt: string;
  createdBy: string;
}

export interface ImageRecord {
  id: string;
  datasetId: string;
  label: CellLabel;
  subjectId: string | null;
  filename: string | null;
  format: string;
  width: number;
  height: number;
  bytes: number;
  sha256: string;
  key: string;
}

/** What a listing tells about an image without reading it: enough for counts and snapshots. */
export interface ImageRef {
  imageId: string;
  key: string;
  label: CellLabel;
  subjectId: string | null;
  bytes: number;
}

interface ShaMarker {
  imageId: string;
  key: string;
}

const EXT: Record<ImageFormat, string> = { bmp: 'bmp', png: 'png', jpeg: 'jpg', tiff: 'tif' };

export const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
/** 128 bits of the content hash: unique per dataset in practice, short enough for URLs. */
export const imageIdFor = (sha256: string) => sha256.slice(0, 32);

export class DatasetService {
  constructor(
    private readonly store: ObjectStore,
    private readonly docs: JsonDocuments,
    private readonly limits: ImageLimitsConfig,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    /** Subject ids become keyed hashes at the door (docs/DATA.md); by hand-built services: a per-process key. */
    private readonly pseudonyms: Pseudonyms = Pseudonyms.ephemeral(),
  ) {
    this.uploads = new UploadService(store, docs, limits);
  }

  /** The uploads/ prefix; stateless, so each service that reads uploads keeps its own view. */
  private readonly uploads: UploadService;

  async create(caller: Caller, name: string, description?: string | null): Promise<DatasetRecord> {
    const trimmed = name.trim();
    if (trimmed.length < 1 || trimmed.length > 100)
      throw badInput('name must be 1-100 characters.', { field: 'name' });
    if (description != null && description.length > 2000) {
      throw badInput('description must be at most 2000 characters.', { field: 'description' });
    }
    const record: DatasetRecord = {
      id: `ds-${ulid().toLowerCase()}`,
      name: trimmed,
      description: description ?? null,
      createdAt: new Date().toISOString(),
      createdBy: caller.keyId,
    };
    await this.docs.create(layout.dataset(record.id), record);
    this.log.info('dataset created', { datasetId: record.id, actor: caller.keyId });
    return record;
  }

  async get(datasetId: string): Promise<DatasetRecord | null> {
    const found = await this.docs.get<DatasetRecord>(layout.dataset(datasetId));
    return found?.value ?? null;
  }

  async require(datasetId: string): Promise<DatasetRecord> {
    const dataset = await this.get(datasetId);
    if (!dataset) throw notFound('Dataset', datasetId);
    return dataset;
  }

  async list(first: number, after?: string): Promise<Page<DatasetRecord>> {
    const keys = await this.store.listAll(layout.datasetsPrefix(), { limit: 100_000 });
    const ids = keys.filter((k) => k.key.endsWith('/dataset.json')).map((k) => k.key.split('/')[1]);
    const page = pageOf(ids.sort(), (id) => id, first, after);
    const records = await Promise.all(page.items.map((item) => this.require(item.node)));
    return { ...page, items: page.items.map((item, i) => ({ cursor: item.cursor, node: records[i] })) };
  }

  /** Every image of a dataset, from one listing (bounded by the import limit). */
  async imageRefs(datasetId: string): Promise<ImageRef[]> {
    const objects = await this.store.listAll(layout.imagesPrefix(datasetId), { limit: 1_000_000 });
    const refs: ImageRef[] = [];
    for (const o of objects) {
      const parts = parseImageKey(o.key);
      const label = parts && folderToLabel(parts.folder);
      if (!parts || !label) continue;
      refs.push({ imageId: parts.imageId, key: o.key, label, subjectId: parts.subjectId, bytes: o.size });
    }
    return refs;
  }

  async listImages(datasetId: string, first: number, after?: string): Promise<Page<ImageRecord>> {
    const refs = await this.imageRefs(datasetId);
    const page = pageOf(refs, (r) => r.key, first, after);
    const nodes = await Promise.all(page.items.map((item) => this.imageRecord(datasetId, item.node)));
    return { ...page, items: page.items.map((item, i) => ({ cursor: item.cursor, node: nodes[i] })) };
  }

  private async imageRecord(datasetId: string, ref: ImageRef): Promise<ImageRecord> {
    const info = await this.store.head(ref.key);
    const meta = info?.metadata ?? {};
    return {
      id: ref.imageId,
      datasetId,
      label: ref.label,
      subjectId: ref.subjectId,
      filename: meta.filename ? decodeURIComponent(meta.filename) : null,
      format: meta.format ?? ref.key.split('.').pop() ?? 'unknown',
      width: Number(meta.width ?? 0),
      height: Number(meta.height ?? 0),
      bytes: info?.size ?? ref.bytes,
      sha256: meta.sha256 ?? '',
      key: ref.key,
    };
  }

  async findImage(datasetId: string, imageId: string): Promise<ImageRef | null> {
    const refs = await this.imageRefs(datasetId);
    return refs.find((r) => r.imageId === imageId) ?? null;
  }

  async readImage(datasetId: string, imageId: string): Promise<{ ref: ImageRef; bytes: Buffer }> {
    const ref = await this.findImage(datasetId, imageId);
    if (!ref) throw notFound('Image', `${datasetId}/${imageId}`);
    const object = await this.store.get(ref.key);
    if (!object) throw notFound('Image', `${datasetId}/${imageId}`);
    return { ref, bytes: object.body };
  }

  /**
   * Validates the bytes as an image, then stores them once per dataset. The SHA-256 marker is created
   * first with If-None-Match, so two concurrent adds of the same bytes store one image; a marker left
   * by a crash before the image was written is repaired by the next add of the same bytes.
   */
  async addImageBytes(
    caller: Caller,
    input: {
      datasetId: string;
      label: CellLabel;
      bytes: Uint8Array;
      filename?: string | null;
      subjectId?: string | null;
      source: string;
    },
  ): Promise<{ image: ImageRecord; duplicate: boolean }> {
    await this.require(input.datasetId);
    const subjectId = this.subjectAtTheDoor(input.subjectId, input.filename);
    // A file name only tells the subject (C-NMC names do); it is not stored, logged or put in metadata.
    const filename = null;
    const decoded = await decodeImage(input.bytes, imageLimits(this.limits, this.limits.uploadBytes));
    const sha256 = sha256Hex(input.bytes);
    const imageId = imageIdFor(sha256);
    const key = layout.image(
      input.datasetId,
      labelToFolder(input.label),
      subjectId,
      imageId,
      EXT[decoded.format],
    );
    const record: ImageRecord = {
      id: imageId,
      datasetId: input.datasetId,
      label: input.label,
      subjectId,
      filename,
      format: decoded.format,
      width: decoded.width,
      height: decoded.height,
      bytes: input.bytes.length,
      sha256,
      key,
    };
    const markerKey = layout.imageBySha(input.datasetId, sha256);
    try {
      await this.docs.create<ShaMarker>(markerKey, { imageId, key });
    } catch (error) {
      if (!(error instanceof LymphoscopeError) || error.code !== 'CONFLICT') throw error;
      const marker = (await this.docs.get<ShaMarker>(markerKey))!.value;
      const existing = await this.store.head(marker.key);
      if (existing) {
        const ref = parseImageKey(marker.key)!;
        return {
          duplicate: true,
          image: await this.imageRecord(input.datasetId, {
            imageId: ref.imageId,
            key: marker.key,
            label: folderToLabel(ref.folder)!,
            subjectId: ref.subjectId,
            bytes: existing.size,
          }),
        };
      }
      if (marker.key !== key) await this.docs.put<ShaMarker>(markerKey, { imageId, key });
    }
    try {
      // Create-once as well: a concurrent add of the same bytes may hold the marker with its image still
      // in flight (or a crash may have left the marker alone); exactly one of them stores the bytes.
      await this.store.put(key, input.bytes, {
        ifNoneMatch: '*',
        contentType: `image/${decoded.format}`,
        metadata: {
          sha256,
          width: String(decoded.width),
          height: String(decoded.height),
          format: decoded.format,
          source: input.source,
          ...(subjectId ? { subject: subjectId } : {}),
          addedby: caller.keyId,
        },
      });
    } catch (error) {
      if (!(error instanceof PreconditionFailed)) throw error;
      const existing = await this.store.head(key);
      return {
        duplicate: true,
        image: await this.imageRecord(input.datasetId, {
          imageId,
          key,
          label: input.label,
          subjectId,
          bytes: existing?.size ?? input.bytes.length,
        }),
      };
    }
    this.log.info('image added', {
      datasetId: input.datasetId,
      imageId,
      label: input.label,
      source: input.source,
    });
    return { image: record, duplicate: false };
  }

  async removeImage(caller: Caller, datasetId: string, imageId: string): Promise<boolean> {
    const ref = await this.findImage(datasetId, imageId);
    if (!ref) throw notFound('Image', `${datasetId}/${imageId}`);
    const info = await this.store.head(ref.key);
    await this.store.delete(ref.key);
    if (info?.metadata.sha256) await this.store.delete(layout.imageBySha(datasetId, info.metadata.sha256));
    await this.audit.record(caller, 'image.remove', `${datasetId}/${imageId}`, { key: ref.key }, null);
    return true;
  }

  /**
   * The pseudonym of the subject given, or else of the one a C-NMC file name carries; null when neither
   * says. The file name is checked and then forgotten.
   */
  private subjectAtTheDoor(
    subjectId: string | null | undefined,
    filename: string | null | undefined,
  ): string | null {
    const given = validateSubjectId(subjectId);
    const name = filename ? validateFilename(filename) : null;
    return this.pseudonyms.subject(given ?? (name ? (parseCnmcFilename(name)?.subjectId ?? null) : null));
  }

  // ------------------------------------------------------------ presigned uploads

  async createUpload(
    caller: Caller,
    input: {
      datasetId?: string | null;
      label?: CellLabel | null;
      filename?: string | null;
      subjectId?: string | null;
      contentType: string;
    },
    ttlSeconds: number,
  ): Promise<{ upload: UploadRecord; url: string; fields: Record<string, string> }> {
    checkUploadContentType(input.contentType);
    if (input.datasetId) {
      await this.require(input.datasetId);
      if (!input.label) throw badInput('label is required when datasetId is given.', { field: 'label' });
    }
    const intent = {
      datasetId: input.datasetId ?? null,
      label: input.label ?? null,
      subjectId: this.subjectAtTheDoor(input.subjectId, input.filename),
      contentType: input.contentType,
    };
    return this.uploads.create(caller, intent, ttlSeconds);
  }

  /**
   * Exactly one confirmation wins (UploadService.claimConfirmation). A failed validation removes the
   * uploaded bytes and the marker, so nothing invalid stays behind.
   */
  async confirmUpload(caller: Caller, uploadId: string): Promise<{ image: ImageRecord; duplicate: boolean }> {
    const upload = await this.uploads.get(caller, uploadId);
    await this.uploads.claimConfirmation(caller, uploadId);
    try {
      const bytes = await this.uploads.readBytes(upload);
      if (!upload.datasetId) {
        // An upload for predict(uploadId): validate now so predict can trust it.
        const decoded = await decodeImage(bytes, imageLimits(this.limits, this.limits.uploadBytes));
        const sha256 = sha256Hex(bytes);
        return {
          duplicate: false,
          image: {
            id: uploadId,
            datasetId: '',
            label: 'NORMAL',
            subjectId: upload.subjectId,
            filename: upload.filename,
            format: decoded.format,
            width: decoded.width,
            height: decoded.height,
            bytes: bytes.length,
            sha256,
            key: layout.uploadObject(uploadId),
          },
        };
      }
      const result = await this.addImageBytes(caller, {
        datasetId: upload.datasetId,
        label: upload.label!,
        bytes,
        filename: upload.filename,
        subjectId: upload.subjectId,
        source: `upload:${uploadId}`,
      });
      await this.uploads.deleteBytes(uploadId);
      return result;
    } catch (error) {
      if (error instanceof LymphoscopeError && error.code !== 'UNAVAILABLE') {
        await this.uploads.deleteBytes(uploadId).catch(() => undefined);
      }
      await this.uploads.releaseConfirmation(uploadId).catch(() => undefined);
      throw error;
    }
  }
}

/**
 * A file name is read for the subject a C-NMC name carries and then forgotten (subjectAtTheDoor): it is
 * never stored, so S3's 2 KB metadata cap no longer bounds it. The character limit still bounds what a
 * client may send.
 */
function validateFilename(filename: string): string {
  const base = filename.split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (base.length < 1 || base.length > 200 || /[\u0000-\u001f]/.test(base)) {
    throw badInput('filename must be 1-200 printable characters.', { field: 'filename' });
  }
  return base;
}
