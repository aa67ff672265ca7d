import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage, type RgbImage } from '../ml/image/decode';
import { toModelInput } from '../ml/image/preprocess';
import { measureMorphology, type Morphology } from '../ml/morphology';
import { parseCnmcFilename } from '../ml/splits';
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

/** Lists a C-NMC style folder: <dir>/all/* are ALL (1), <dir>/hem/* normal (0). */
export async function listFolder(
  dir: string,
): Promise<Array<{ id: string; file: string; label: 0 | 1; subjectId: string | null }>> {
  const entries: Array<{ id: string; file: string; label: 0 | 1; subjectId: string | null }> = [];
  for (const [folder, label] of [
    ['all', 1],
    ['hem', 0],
  ] as const) {
    let names: string[] = [];
    try {
      names = (await readdir(path.join(dir, folder))).filter((n) => IMAGE.test(n)).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      entries.push({
        id: `${folder}/${name}`,
        file: path.join(dir, folder, name),
        label,
        subjectId: parseCnmcFilename(name)?.subjectId ?? null,
      });
    }
  }
  if (entries.length === 0) throw new Error(`No images under ${dir}/all or ${dir}/hem.`);
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
