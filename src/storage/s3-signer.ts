import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, SourceData } from '@smithy/types';

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(new Uint8Array(data));
}

/**
 * node:crypto behind the hash interface the SigV4 signer takes (`new Sha256(secret?)`: an HMAC with a
 * secret).
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

/**
 * A SigV4 signer configured as S3 signs: the path as sent, without a second round of encoding or
 * normalisation. For wherever requests are signed or verified without the SDK's client: the request
 * path's S3 calls (s3-requests.ts), the local S3's signature check (which rebuilds the payload hash
 * header itself: `applyChecksum: false`), and tests and benches that speak to S3 directly.
 */
export function s3Signer(
  credentials: AwsCredentialIdentity,
  region: string,
  opts: { applyChecksum?: boolean } = {},
): SignatureV4 {
  return new SignatureV4({
    credentials,
    region,
    service: 's3',
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: opts.applyChecksum ?? true,
  });
}
