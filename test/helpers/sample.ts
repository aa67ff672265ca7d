import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const SAMPLE_DIR = path.join(__dirname, '..', '..', 'data', 'cnmc-sample');

export interface SampleImage {
  file: string;
  name: string;
  label: 'ALL' | 'NORMAL';
  bytes: Buffer;
}

/** The real C-NMC sample images shipped in data/cnmc-sample, in a stable order. */
export function sampleImages(): SampleImage[] {
  const out: SampleImage[] = [];
  for (const [folder, label] of [
    ['all', 'ALL'],
    ['hem', 'NORMAL'],
  ] as const) {
    for (const name of readdirSync(path.join(SAMPLE_DIR, folder))
      .filter((n) => n.endsWith('.bmp'))
      .sort()) {
      const file = path.join(SAMPLE_DIR, folder, name);
      out.push({ file, name, label, bytes: readFileSync(file) });
    }
  }
  return out;
}
