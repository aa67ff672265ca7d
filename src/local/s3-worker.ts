import { parentPort, workerData } from 'node:worker_threads';
import { startLocalS3, type LocalS3Options, type S3WorkerRequest } from './s3-server';

/** The local S3 server on a thread of its own (startLocalS3InWorker in s3-server.ts). */
const port = parentPort;
if (!port) throw new Error('s3-worker.ts runs as a worker thread (startLocalS3InWorker).');

startLocalS3(workerData as LocalS3Options).then(
  (s3) => {
    port.on('message', (request: S3WorkerRequest) => {
      if (request.type === 'allowOrigin') s3.allowOrigin(request.origin);
      else
        void s3.stop().then(
          () => port.postMessage({ type: 'stopped' }),
          (error: unknown) => port.postMessage({ type: 'failed', message: String(error) }),
        );
    });
    const { endpoint, credentials, repairs } = s3;
    port.postMessage({ type: 'started', endpoint, port: s3.port, credentials, repairs });
  },
  (error: unknown) => {
    const { code, message } = error as NodeJS.ErrnoException;
    port.postMessage({ type: 'failed', code, message });
  },
);
