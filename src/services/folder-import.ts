import { LymphoscopeError, badInput, notFound, tooLarge } from '../errors';
import { parseCnmcFilename } from '../ml/data/splits';
import type { Logger } from '../observability/log';
import type { ObjectStore } from '../storage/object-store';
import { runBounded } from '../concurrency/run-bounded';
import type { Caller } from './auth';
import type { DatasetService } from './datasets';
import type { ImageLimitsConfig } from './image-limits';
import { folderToLabel } from './labels';
import { outsidePixelBudget } from './work-budget';

const IMPORTABLE = /\.(bmp|png|jpe?g|tiff?)$/i;

/**
 * Bulk import of a folder already in the bucket (imports/<name>/all/*, .../hem/*) into a dataset: each
 * file goes through DatasetService.addImageBytes like any other add, so the same validation, subject
 * pseudonyms and create-once storage apply; a file that fails is reported, not fatal.
 */
export class FolderImport {
  constructor(
    private readonly store: ObjectStore,
    private readonly datasets: DatasetService,
    private readonly limits: Pick<ImageLimitsConfig, 'importFiles' | 'uploadBytes'>,
    private readonly log: Logger,
  ) {}

  /** Imports <prefix>/all/* and <prefix>/hem/* from the bucket, with a report per file. */
  async run(
    caller: Caller,
    datasetId: string,
    s3Prefix: string,
  ): Promise<{
    accepted: number;
    duplicates: number;
    rejected: Array<{ key: string; code: string; reason: string }>;
  }> {
    await this.datasets.require(datasetId);
    const prefix = s3Prefix.replace(/^\/+/, '').replace(/\/?$/, '/');
    if (prefix === '/' || prefix.includes('..') || prefix.length > 512) {
      throw badInput('s3Prefix must name a folder in the bucket, e.g. "imports/cnmc-sample".', {
        field: 's3Prefix',
      });
    }
    if (
      /^(datasets|models|jobs|keys|audit|predictions|reviews|uploads|prediction-owners|data-jobs|exports|retention)\//.test(
        prefix,
      )
    ) {
      throw badInput("s3Prefix must not point inside Lymphoscope's own data.", { field: 's3Prefix' });
    }
    const objects = await this.store.listAll(prefix, { limit: this.limits.importFiles + 1 });
    if (objects.length > this.limits.importFiles) {
      throw tooLarge(`The prefix holds more than ${this.limits.importFiles} files; import it in parts.`, {
        limit: this.limits.importFiles,
      });
    }
    if (objects.length === 0) throw badInput(`No files under "${prefix}".`, { field: 's3Prefix' });
    const report = {
      accepted: 0,
      duplicates: 0,
      rejected: [] as Array<{ key: string; code: string; reason: string }>,
    };
    const work = objects.map((o) => async () => {
      const relative = o.key.slice(prefix.length);
      const [folder, ...rest] = relative.split('/');
      const label = folderToLabel(folder);
      const filename = rest.join('/');
      if (!label || rest.length !== 1 || !IMPORTABLE.test(filename)) {
        report.rejected.push({
          key: o.key,
          code: 'BAD_USER_INPUT',
          reason: 'not an image under all/ or hem/',
        });
        return;
      }
      try {
        if (o.size > this.limits.uploadBytes)
          throw tooLarge(`${o.size} bytes is over the ${this.limits.uploadBytes} limit.`);
        const object = await this.store.get(o.key);
        if (!object) throw notFound('Object', o.key);
        const parsed = parseCnmcFilename(filename);
        const result = await this.datasets.addImageBytes(caller, {
          datasetId,
          label,
          bytes: object.body,
          filename,
          subjectId: parsed?.subjectId ?? null,
          // Not the key: lab file names carry patient names and record numbers.
          source: 'import',
        });
        if (result.duplicate) report.duplicates += 1;
        else report.accepted += 1;
      } catch (error) {
        if (!(error instanceof LymphoscopeError) || error.code === 'UNAVAILABLE') throw error;
        report.rejected.push({ key: o.key, code: error.code, reason: error.message });
      }
    });
    // A bulk import is bounded by LYMPHOSCOPE_MAX_IMPORT_FILES and the size of each file, not by the
    // request's pixel budget, which is sized for predictions (63 C-NMC cells would nearly spend it).
    await outsidePixelBudget(() => runBounded(inListingOrderPerContent(objects, work), 4));
    this.log.info('import finished', {
      datasetId,
      prefix,
      accepted: report.accepted,
      duplicates: report.duplicates,
      rejected: report.rejected.length,
    });
    return report;
  }
}

/**
 * The work per file (`work[i]` for `objects[i]`) as tasks that may run side by side, where files that may
 * hold the same bytes run one after the other, in the listing's order. The first of a set of identical
 * files is then always the one the dataset keeps, with the subject its C-NMC name gives, and the later
 * ones count as duplicates. Side by side, whichever finished first won, and a copy under another name
 * could take the image without its subject (a subject-grouped split would then not know whose cell it
 * is). Identical bytes have the same size and, for the single-part uploads a cell image is (a file over
 * the upload limit is refused unread), the same ETag: S3's MD5 of the object.
 */
function inListingOrderPerContent(
  objects: ReadonlyArray<{ size: number; etag: string }>,
  work: ReadonlyArray<() => Promise<void>>,
): Array<() => Promise<void>> {
  const groups = new Map<string, Array<() => Promise<void>>>();
  objects.forEach((o, i) => {
    const content = `${o.size}:${o.etag}`;
    const group = groups.get(content);
    if (group) group.push(work[i]);
    else groups.set(content, [work[i]]);
  });
  return [...groups.values()].map((tasks) => async () => {
    for (const task of tasks) await task();
  });
}
