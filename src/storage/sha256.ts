import { createHash, createHmac } from 'node:crypto';
import type { SourceData } from '@smithy/types';

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(new Uint8Array(data));
}

/**
 * node:crypto behind the hash interface the SigV4 signer takes (`new Sha256(secret?)`: an HMAC with a
 * secret). Used where requests are signed or verified without the SDK's client: the request path's S3
 * calls (s3-requests.ts) and the local S3's signature check.
 */
export class NodeSha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: SourceData): void {
    this.hash.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}
