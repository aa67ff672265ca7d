import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { LogLevel as PowertoolsLogLevel } from '@aws-lambda-powertools/logger/types';

/**
 * One JSON object per line, the format CloudWatch Logs Insights and `jq` read, written by AWS Lambda
 * Powertools' Logger: `level`, `message`, `timestamp`, `service`, on Lambda the `xray_trace_id` of the
 * invocation, then the logger's persistent keys (stage, job id...) and the call's fields. Operators
 * need: what happened (message), to what (ids), how long (ms), and for errors the name, message and
 * stack (Powertools serialises an Error wherever it appears in the fields), which stay here and never
 * reach a client. Debug and info go to stdout, warn and error to stderr.
 *
 * The interface is the project's own, so call sites do not depend on Powertools.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const POWERTOOLS_LEVEL: Record<LogLevel, PowertoolsLogLevel> = {
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  silent: 'SILENT',
};

function wrap(logger: PowertoolsLogger): Logger {
  return {
    debug: (msg, fields) => logger.debug(msg, fields ?? {}),
    info: (msg, fields) => logger.info(msg, fields ?? {}),
    warn: (msg, fields) => logger.warn(msg, fields ?? {}),
    error: (msg, fields) => logger.error(msg, fields ?? {}),
    child: (fields) => {
      const child = logger.createChild();
      child.appendPersistentKeys(fields);
      return wrap(child);
    },
  };
}

/** `base.service` names the service (default `lymphoscope`); the other keys go on every line. */
export function createLogger(level: LogLevel = 'info', base: Record<string, unknown> = {}): Logger {
  const { service, ...persistentKeys } = base;
  return wrap(
    new PowertoolsLogger({
      serviceName: typeof service === 'string' ? service : 'lymphoscope',
      logLevel: POWERTOOLS_LEVEL[level],
      persistentKeys,
    }),
  );
}
