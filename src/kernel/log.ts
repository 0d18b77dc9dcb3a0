/**
 * The log calls ports and pure code may make, without tying the kernel to pino: a pino `Logger`
 * satisfies it (infra/logger.ts). One JSON line per call; `obj` carries the identifiers.
 */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Log {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}
