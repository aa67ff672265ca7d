import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';

/**
 * Ports of the local stack. The local S3's port is kept beside its data (<dataDir>/local-s3.json) so that it stays the same from one
 * start to the next: scripts, `aws --endpoint-url` commands and bookmarks that name it keep working.
 */
const FILE = 'local-s3.json';

/** The port the last start used, or null (first start, or an unreadable file). Never throws. */
export async function rememberedS3Port(dataDir: string): Promise<number | null> {
  try {
    const { port } = JSON.parse(await readFile(path.join(dataDir, FILE), 'utf8')) as { port?: unknown };
    return Number.isInteger(port) && (port as number) > 0 && (port as number) < 65536
      ? (port as number)
      : null;
  } catch {
    return null;
  }
}

export async function rememberS3Port(dataDir: string, port: number): Promise<void> {
  await writeFile(path.join(dataDir, FILE), JSON.stringify({ port }) + '\n');
}

/**
 * Whether 127.0.0.1:`port` can be listened on now. s3rver cannot be asked: a port in use makes its
 * server emit an unhandled 'error' that ends the process, so the port is tried first. Never throws.
 */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
      .once('error', () => resolve(false))
      .listen(port, host, () => probe.close(() => resolve(true)));
  });
}

/** The error a taken port gives, with a message a person can act on. */
export function portInUse(port: number, what: string, setting: string): NodeJS.ErrnoException {
  return Object.assign(
    new Error(`${what} port ${port} is in use (is another Lymphoscope running?). Stop it or set ${setting}.`),
    { code: 'EADDRINUSE', port },
  );
}
