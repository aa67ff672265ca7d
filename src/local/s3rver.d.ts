// The parts of s3rver 3 (which ships no types) and of Koa 2 (its base class) that
// src/local/s3-server.ts uses.
declare module 's3rver' {
  import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'http';

  namespace S3rver {
    interface Options {
      address?: string;
      port?: number;
      silent?: boolean;
      directory?: string;
      resetOnClose?: boolean;
      allowMismatchedSignatures?: boolean;
      vhostBuckets?: boolean;
      configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
    }

    /** An object as s3rver's store sees it: `content` is the request stream, or a Buffer. */
    interface StoredObject {
      bucket: string;
      key: string;
      content: NodeJS.ReadableStream | Buffer;
      metadata: Record<string, string>;
    }

    /** s3rver's FilesystemStore (lib/stores/filesystem.js). */
    interface Store {
      /** Metadata of a stored object (etag quoted); rejects with code ENOENT when it is missing. */
      getMetadata(bucket: string, key: string): Promise<Record<string, string>>;
      /** key defaults to "" (a bucket's own resource). */
      getResourcePath(bucket: string, key: string | undefined, resource: string): string;
      putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5?: string): Promise<void>;
      putObject(object: StoredObject): Promise<{ size: number; md5: string }>;
      deleteObject(bucket: string, key: string): Promise<void>;
      getBucket(bucket: string): Promise<object | null>;
      getBucketPath(bucket: string): string;
      /** A bucket's or object's configuration (cors, website, tagging...); null when it has none. */
      getSubresource(bucket: string, key: string | undefined, resourceType: string): Promise<object | null>;
      /** Keys after `startAfter`, in order, at most `maxKeys` of them. */
      listObjects(
        bucket: string,
        options: { prefix?: string; delimiter?: string; startAfter?: string; maxKeys?: number },
      ): Promise<{ objects: ListedObject[]; commonPrefixes: string[]; isTruncated: boolean }>;
    }

    interface ListedObject {
      key: string;
      size: number;
      lastModifiedDate: Date;
      /** Includes `etag` (quoted). */
      metadata: Record<string, string>;
    }

    interface Context {
      method: string;
      /** The request path, still percent-encoded. */
      path: string;
      /** The raw query string, without '?'. */
      querystring: string;
      headers: IncomingHttpHeaders;
      status: number;
      type: string;
      body: unknown;
      req: IncomingMessage;
      res: ServerResponse;
      set(field: string, value: string): void;
    }

    type Middleware = (ctx: Context, next: () => Promise<void>) => Promise<void>;
  }

  class S3rver {
    constructor(options?: S3rver.Options);
    store: S3rver.Store;
    /** Koa's middleware stack, composed when the server starts listening. */
    middleware: S3rver.Middleware[];
    httpServer?: Server;
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }

  export = S3rver;
}

declare module 's3rver/lib/models/bucket' {
  /** What s3rver's FilesystemStore.getBucket answers for a bucket that exists. */
  class S3Bucket {
    constructor(name: string, creationDate: Date);
    name: string;
    creationDate: Date;
  }
  export = S3Bucket;
}
