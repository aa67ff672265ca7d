import { mkdir, readdir, readFile, rename, rm, stat } from 'fs/promises';
import { dirname, join, relative } from 'path';
import { TEMPORARY_FILE, writeAtomically } from './s3rver-compat';

/**
 * What a crash can leave in the local S3's directory, and the repair at start. s3rver keeps each object
 * as three files beside each other: `<name>._S3rver_object` (the bytes), `<name>._S3rver_object.md5`
 * and `<name>._S3rver_metadata.json`. Writes are atomic now (s3rver-compat.ts: temporary file, then
 * rename), but a SIGKILL of an older version, or of the disk's own cache, could leave a 0-byte or
 * truncated metadata file: s3rver then answers every read of the object, and every listing of its
 * prefix, with a 500, which the SDK retries and reports as UNAVAILABLE, so the stack stayed degraded
 * for good. Before the server starts, each object is checked:
 *
 * - leftover temporary files (`*.tmp`) of interrupted writes are removed;
 * - an MD5 file that is not 32 hex digits is removed (s3rver recomputes it from the bytes);
 * - damaged metadata (missing, empty, not a JSON object) of an object whose bytes are a JSON document
 *   is rebuilt (`content-type: application/json`: the registry's documents carry nothing else that
 *   matters after the write); of any other object, the object is quarantined;
 * - a JSON document whose bytes do not parse (a torn write) is quarantined.
 *
 * Quarantined files move to `<directory>-quarantine/<time>/`, out of the bucket, kept for a person to
 * look at. Every action is returned, for the stack to log.
 */

export interface StoreRepair {
  bucket: string;
  key: string;
  problem: string;
  action: 'removed' | 'rebuilt' | 'quarantined';
}

const OBJECT_SUFFIX = '._S3rver_object';
const METADATA_SUFFIX = '._S3rver_metadata.json';

async function* files(directory: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(directory, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  for (const entry of entries) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile()) yield path;
  }
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function parseJson(bytes: Buffer | undefined): unknown {
  if (bytes === undefined || bytes.length === 0) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Checks and repairs every object under `directory` (s3rver's root). Never touches a sound object. */
export async function repairLocalStore(directory: string): Promise<StoreRepair[]> {
  const repairs: StoreRepair[] = [];
  const quarantine = join(`${directory}-quarantine`, new Date().toISOString().replace(/[:.]/g, '-'));
  const where = (path: string) => {
    const [bucket, ...rest] = relative(directory, path).split('/');
    return { bucket, key: rest.join('/') };
  };
  const moveAside = async (paths: string[]) => {
    for (const path of paths) {
      const target = join(quarantine, relative(directory, path));
      await mkdir(dirname(target), { recursive: true });
      await rename(path, target).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
  };

  for await (const path of files(directory)) {
    if (TEMPORARY_FILE.test(path)) {
      await rm(path, { force: true });
      const { bucket, key } = where(
        path.replace(TEMPORARY_FILE, '').replace(/\._S3rver_(object(\.md5)?|metadata\.json)$/, ''),
      );
      repairs.push({
        bucket,
        key,
        problem: 'leftover temporary file of an interrupted write',
        action: 'removed',
      });
      continue;
    }
    if (!path.endsWith(OBJECT_SUFFIX)) continue;
    const base = path.slice(0, -OBJECT_SUFFIX.length);
    const { bucket, key } = where(base);
    const metadataPath = base + METADATA_SUFFIX;
    const md5Path = path + '.md5';

    const md5 = await readOptional(md5Path);
    if (md5 !== undefined && !/^[0-9a-f]{32}$/.test(md5.toString('utf8'))) {
      await rm(md5Path, { force: true });
      repairs.push({ bucket, key, problem: 'damaged MD5 file', action: 'removed' });
    }

    const metadata = parseJson(await readOptional(metadataPath));
    const metadataSound = isObject(metadata);
    const looksJson = metadataSound && String(metadata['content-type'] ?? '').startsWith('application/json');
    if (metadataSound && !looksJson) continue;
    // Only documents (and objects whose metadata is gone) are read: images and weights are not.
    const size = (await stat(path)).size;
    const body = size <= 16 * 1024 * 1024 ? await readFile(path) : undefined;
    const bodyJson = body !== undefined && parseJson(body) !== undefined;
    if (metadataSound) {
      if (bodyJson) continue;
      await moveAside([path, md5Path, metadataPath]);
      repairs.push({
        bucket,
        key,
        problem: 'JSON document does not parse (torn write)',
        action: 'quarantined',
      });
    } else if (bodyJson) {
      writeAtomically(metadataPath, JSON.stringify({ 'content-type': 'application/json' }, null, 2));
      repairs.push({ bucket, key, problem: 'damaged metadata file', action: 'rebuilt' });
    } else {
      await moveAside([path, md5Path, metadataPath]);
      repairs.push({ bucket, key, problem: 'damaged metadata file', action: 'quarantined' });
    }
  }
  return repairs;
}
