import type { Dirent } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage, type RgbImage } from '../ml/image/decode';
import { toModelInput } from '../ml/image/preprocess';
import { measureMorphology, type Morphology } from '../ml/features/morphology';
import { parseCnmcFilename } from '../ml/data/splits';
import { Progress } from './progress';

export interface FolderImage {
  /** Path relative to the folder, e.g. all/UID_11_1_1_all.bmp: unique, so it serves as the id. */
  id: string;
  file: string;
  label: 0 | 1;
  subjectId: string | null;
  pixels: Float32Array;
  morphology: Morphology;
}

const IMAGE = /\.(bmp|png|jpe?g|tiff?)$/i;

/** The class folders a labelled folder may hold: C-NMC's all/ and hem/, and normal/ for the normal class. */
export const CLASS_FOLDERS: ReadonlyArray<readonly [string, 0 | 1]> = [
  ['all', 1],
  ['hem', 0],
  ['normal', 0],
];

/**
 * Lists a labelled folder: <dir>/all/* are ALL (1), <dir>/hem/* and <dir>/normal/* normal (0). A folder
 * with images anywhere else (at its top, or in a subfolder of another name) is refused rather than scored
 * on the classes it happens to have: a `blasts/` beside `hem/` would otherwise be silently left out.
 */
export async function listFolder(
  dir: string,
): Promise<Array<{ id: string; file: string; label: 0 | 1; subjectId: string | null }>> {
  let top: Dirent[];
  try {
    top = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new Error(`Cannot read the folder ${dir}: ${(error as Error).message}`);
  }
  const known = new Set(CLASS_FOLDERS.map(([folder]) => folder));
  const strays: string[] = top.filter((e) => e.isFile() && IMAGE.test(e.name)).map((e) => e.name);
  for (const entry of top.filter((e) => e.isDirectory() && !known.has(e.name))) {
    const inside = await readdir(path.join(dir, entry.name)).catch(() => [] as string[]);
    if (inside.some((n) => IMAGE.test(n))) strays.push(`${entry.name}/`);
  }
  const expected = 'images in all/ (ALL) and hem/ or normal/ (normal)';
  if (strays.length > 0) {
    throw new Error(
      `${dir} holds images outside a class folder it knows (${strays.slice(0, 5).join(', ')}` +
        `${strays.length > 5 ? ', ...' : ''}): expected ${expected}.`,
    );
  }
  const entries: Array<{ id: string; file: string; label: 0 | 1; subjectId: string | null }> = [];
  for (const [folder, label] of CLASS_FOLDERS) {
    if (!top.some((e) => e.isDirectory() && e.name === folder)) continue;
    const names = (await readdir(path.join(dir, folder))).filter((n) => IMAGE.test(n)).sort();
    for (const name of names) {
      entries.push({
        id: `${folder}/${name}`,
        file: path.join(dir, folder, name),
        label,
        subjectId: parseCnmcFilename(name)?.subjectId ?? null,
      });
    }
  }
  if (entries.length === 0) throw new Error(`No images in ${dir}: expected ${expected}.`);
  return entries;
}

/**
 * Decodes, resizes and measures every image of a folder (4 at a time). `transform`, when given, changes
 * each decoded image first (cross-validation's lab shifts). Without `onProgress`, progress goes to
 * stderr (a bar on a terminal, plain lines when piped), so every command that reads a folder shows it.
 */
export async function loadFolder(
  dir: string,
  inputSize: number,
  onProgress?: (done: number, total: number) => void,
  transform?: (image: RgbImage) => Promise<RgbImage>,
): Promise<FolderImage[]> {
  const entries = await listFolder(dir);
  const report = onProgress ?? decodeProgress(dir);
  const out: FolderImage[] = new Array(entries.length);
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < entries.length) {
      const index = next++;
      const entry = entries[index];
      const decoded: RgbImage = await decodeImage(await readFile(entry.file));
      const image = transform ? await transform(decoded) : decoded;
      out[index] = {
        ...entry,
        pixels: await toModelInput(image, inputSize),
        morphology: measureMorphology(image),
      };
      report(++done, entries.length);
    }
  };
  await Promise.all([lane(), lane(), lane(), lane()]);
  return out;
}

function decodeProgress(dir: string): (done: number, total: number) => void {
  const progress = new Progress();
  return (done, total) => {
    progress.update(done / total, `decoding ${done}/${total} images of ${dir}`);
    if (done === total) progress.done();
  };
}
