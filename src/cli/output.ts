/**
 * Human output by default, `--json` for machines: the one place that decides what reaches stdout.
 *
 * stdout carries results only. Logs (pino, src/main.ts), progress, hints and error messages go to
 * stderr, so `billing … --json | jq` always reads exactly one JSON document: the command's result,
 * or on failure `{"error":{"code","message","details"?}}` (with the fields of a result the command
 * had produced before failing, e.g. a batch's final status when rows failed). In JSON mode the
 * result is held until the command ends ({@link CliOutput.finish}), so a failure after it still
 * yields one document. A command that streams its own document (a results file) takes stdout with
 * {@link Output.takeStdout}.
 */

export interface Output {
  json: boolean;
  /** Prints a result: as JSON when --json (once, when the command ends), else through `human`. */
  result(value: unknown, human?: (v: unknown) => string): void;
  /** A line for the person watching: stdout in human mode, stderr with --json. */
  info(line: string): void;
  /** An error or warning line: always stderr. */
  error(line: string): void;
  /** Where progress is drawn: stdout in human mode, stderr with --json (stdout is the document). */
  progress: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /**
   * stdout for a document the command streams itself (CSV, a JSON array). Nothing else is printed
   * on stdout afterwards, not even an error document (the error goes to stderr).
   */
  takeStdout(): NodeJS.WritableStream;
}

/** The error document's `error` member. */
export interface ErrorDocument {
  code: string;
  message: string;
  details?: unknown;
}

/** What runCli holds: the command's Output plus the end of a --json run. */
export interface CliOutput extends Output {
  /** With --json, prints the one document: the held result, or the error. No-op for humans. */
  finish(error?: ErrorDocument): void;
}

type Stream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export function createOutput(json: boolean, out: Stream, err: Stream): CliOutput {
  let held: { value: unknown } | undefined;
  let stdoutTaken = false;
  let finished = false;
  return {
    json,
    progress: json ? err : out,
    result(value, human) {
      if (stdoutTaken) throw new Error('a command printed a result after streaming to stdout');
      if (!json) {
        out.write(human ? `${human(value)}\n` : `${JSON.stringify(value, null, 2)}\n`);
        return;
      }
      if (held) throw new Error('a command printed two results in --json mode');
      held = { value };
    },
    info(line) {
      (json ? err : out).write(`${line}\n`);
    },
    error(line) {
      err.write(`${line}\n`);
    },
    takeStdout() {
      if (held) throw new Error('a command streamed to stdout after printing a result');
      stdoutTaken = true;
      return out;
    },
    finish(error) {
      if (!json || finished || stdoutTaken) return;
      finished = true;
      let doc: unknown;
      if (error) {
        const base =
          held &&
          typeof held.value === 'object' &&
          held.value !== null &&
          !Array.isArray(held.value)
            ? (held.value as Record<string, unknown>)
            : {};
        doc = { ...base, error };
      } else {
        doc = held ? held.value : { ok: true };
      }
      out.write(`${JSON.stringify(doc)}\n`);
    },
  };
}

/**
 * A page of a list as aligned text columns (two spaces apart), with the `--cursor` of the next
 * page when there is one, or `empty` when the page holds nothing.
 */
export function formatPage(
  rows: string[][],
  next: string | null | undefined,
  empty: string,
): string {
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, c) =>
    Math.max(0, ...rows.map((r) => r[c]?.length ?? 0)),
  );
  const lines = rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd(),
  );
  if (next) lines.push(`more: --cursor ${next}`);
  return lines.length > 0 ? lines.join('\n') : empty;
}
