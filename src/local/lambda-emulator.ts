import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../observability/log';

export interface LambdaEmulatorOptions {
  /** Function name -> module exporting `handler`, run in a child process per invocation. */
  functions: Record<string, string>;
  env: NodeJS.ProcessEnv;
  port?: number;
  /** Like Lambda's timeout: the child is killed after this, and sees the deadline in its context. */
  timeoutMs?: number;
  /** Like an async invocation's maximumRetryAttempts. */
  maxRetries?: number;
  retryDelayMs?: number;
  /**
   * At most this many invocations run at once (default: one per core), like a reserved concurrency:
   * the others wait in order, as throttled async events wait in Lambda's queue.
   */
  maxConcurrent?: number;
  log: Logger;
}

export interface RunningInvocation {
  functionName: string;
  requestId: string;
  attempt: number;
  child: ChildProcess;
}

/**
 * Just enough of the AWS Lambda Invoke API (POST /2015-03-31/functions/<name>/invocations) for
 * asynchronous 'Event' invocations, so the product's LambdaJobDispatcher runs unchanged on a laptop.
 * Each invocation runs in its own process, like a Lambda sandbox: a crash kills only that worker, and
 * the emulator retries the same event with the same request id, as Lambda does.
 */
export class LambdaEmulator {
  private server: Server | null = null;
  private readonly running = new Set<RunningInvocation>();
  private readonly waiting: Array<{
    functionName: string;
    payload: string;
    requestId: string;
    attempt: number;
  }> = [];
  private stopping = false;
  /** Called when an invocation finishes for good (tests wait on it). */
  onSettled: ((functionName: string, requestId: string, exitCode: number | null) => void) | null = null;

  constructor(private readonly options: LambdaEmulatorOptions) {}

  async start(): Promise<{ endpoint: string; port: number }> {
    this.server = createServer((req, res) => {
      const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(req.url ?? '');
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const functionName = m ? decodeURIComponent(m[1]) : '';
        if (!m || req.method !== 'POST' || !this.options.functions[functionName]) {
          res.writeHead(404, {
            'content-type': 'application/json',
            'x-amzn-errortype': 'ResourceNotFoundException',
          });
          res.end(JSON.stringify({ Type: 'User', message: `Function not found: ${functionName}` }));
          return;
        }
        if ((req.headers['x-amz-invocation-type'] ?? 'RequestResponse') !== 'Event') {
          res.writeHead(400, {
            'content-type': 'application/json',
            'x-amzn-errortype': 'InvalidParameterValueException',
          });
          res.end(JSON.stringify({ message: 'The local emulator supports InvocationType Event only.' }));
          return;
        }
        const requestId = randomUUID();
        this.invoke(functionName, Buffer.concat(chunks).toString('utf8') || '{}', requestId, 0);
        res.writeHead(202, { 'x-amzn-requestid': requestId });
        res.end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.options.port ?? 0, '127.0.0.1', resolve));
    const port = (this.server.address() as AddressInfo).port;
    return { endpoint: `http://127.0.0.1:${port}`, port };
  }

  /** Invocations whose process is alive now. */
  invocations(): RunningInvocation[] {
    return [...this.running];
  }

  /** Invocations accepted but waiting for a free slot. */
  queued(): number {
    return this.waiting.length;
  }

  private invoke(functionName: string, payload: string, requestId: string, attempt: number): void {
    if (this.stopping) return;
    if (this.running.size >= (this.options.maxConcurrent ?? os.availableParallelism())) {
      this.waiting.push({ functionName, payload, requestId, attempt });
      return;
    }
    const timeoutMs = this.options.timeoutMs ?? 900_000;
    const deadline = Date.now() + timeoutMs;
    const runner = path.join(__dirname, 'worker-process.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', runner], {
      env: {
        ...this.options.env,
        LYMPHOSCOPE_LAMBDA_MODULE: this.options.functions[functionName],
        LYMPHOSCOPE_LAMBDA_EVENT: payload,
        LYMPHOSCOPE_LAMBDA_REQUEST_ID: requestId,
        LYMPHOSCOPE_LAMBDA_DEADLINE: String(deadline),
        LYMPHOSCOPE_LAMBDA_FUNCTION: functionName,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const invocation: RunningInvocation = { functionName, requestId, attempt, child };
    this.running.add(invocation);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 1000);
    this.options.log.info('lambda invoked', { functionName, requestId, attempt, pid: child.pid });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      this.running.delete(invocation);
      const next = this.waiting.shift();
      if (next) this.invoke(next.functionName, next.payload, next.requestId, next.attempt);
      if (code === 0 || this.stopping) {
        this.onSettled?.(functionName, requestId, code);
        return;
      }
      const retries = this.options.maxRetries ?? 2;
      this.options.log.warn('lambda invocation failed', {
        functionName,
        requestId,
        attempt,
        code,
        signal,
        willRetry: attempt < retries,
      });
      if (attempt < retries) {
        setTimeout(
          () => this.invoke(functionName, payload, requestId, attempt + 1),
          this.options.retryDelayMs ?? 2000,
        );
      } else {
        this.onSettled?.(functionName, requestId, code);
      }
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.waiting.length = 0;
    const exits = [...this.running].map(
      (r) =>
        new Promise<void>((resolve) => {
          r.child.once('exit', () => resolve());
          r.child.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
