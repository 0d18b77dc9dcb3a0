/**
 * Errors the CLI turns into exit codes and, with `--json`, into the error document
 * `{"error":{"code","message","details"?}}` (README, "CLI"). Exit codes: 1 runtime failure, 2 bad
 * usage or invalid input, 3 a batch completed with rows that did not succeed (`--wait`), 130
 * interrupted (Ctrl-C).
 */
import type { UnreadableRecords } from '../kernel/ports.ts';

export interface CliErrorOptions {
  /** Stable, machine-readable code of the JSON error document (`not_found`, `invalid_input`, …). */
  code?: string;
  /** Structured details for the JSON error document (never a secret). */
  details?: unknown;
  /** The process's exit code. */
  exitCode?: number;
  cause?: unknown;
}

/**
 * A failure the CLI reports as one message (no stack) with a chosen exit code and error code. A
 * message of several lines is given as its lines: a person reads them as lines (each shown
 * printable, src/cli/output.ts), the JSON error document's `message` joins them with line breaks.
 */
export class CliError extends Error {
  readonly code: string;
  readonly details: unknown;
  readonly exitCode: number;
  /** The message's lines, as printed in human mode. */
  readonly lines: readonly string[];

  constructor(message: string | readonly string[], opts: CliErrorOptions = {}) {
    const lines = typeof message === 'string' ? [message] : [...message];
    super(lines.join('\n'), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.lines = lines;
    this.name = 'CliError';
    this.code = opts.code ?? 'failed';
    this.details = opts.details;
    this.exitCode = opts.exitCode ?? 1;
  }
}

/** Bad usage or invalid input: exit code 2, error code `usage` unless a more precise one is given. */
export class UsageError extends CliError {
  constructor(message: string | readonly string[], opts: Omit<CliErrorOptions, 'exitCode'> = {}) {
    super(message, { code: 'usage', ...opts, exitCode: 2 });
    this.name = 'UsageError';
  }
}

/** Exit code of `batch submit --wait` when the batch completed with rows that did not succeed. */
export const EXIT_ROWS_FAILED = 3;
/** Exit code after Ctrl-C (SIGINT) or SIGTERM stopped a command that waits. */
export const EXIT_INTERRUPTED = 130;

/** A file-system error as a short phrase: "no such directory", "permission denied", … */
export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a parent is not a directory';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on device';
    default:
      return code ?? (err instanceof Error ? err.message : String(err));
  }
}

/**
 * Runs a list read whose `--cursor` the store may refuse (a RangeError: malformed, or made for
 * another filter) and answers that as a usage error naming the flag.
 */
export async function withCursorFlag<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof RangeError) {
      throw new UsageError(`--cursor: ${err.message}`, { code: 'invalid_input' });
    }
    throw err;
  }
}

/**
 * The failure of a pass over every record (`billing keys reseal`, `billing payments reindex`) that
 * skipped records this version cannot read (docs/operations.md "A record this version cannot
 * read"): what the error says of them, naming them; `undefined` when there were none.
 */
export function unreadableRecordsMessage(c: UnreadableRecords): string | undefined {
  if (c.unreadableRecords === 0) return undefined;
  return (
    `${c.unreadableRecords} records this version cannot read were skipped and left as they are ` +
    `(${c.unreadableRecordsAt.join(', ')}${c.unreadableRecords > c.unreadableRecordsAt.length ? ', …' : ''}): ` +
    'fix them by hand or with the version that wrote them (docs/operations.md, "A record this ' +
    'version cannot read"), then run it again'
  );
}
