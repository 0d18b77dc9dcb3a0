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
 *
 * Human output is lines, and each line is passed through {@link printable} on its way out: a
 * value from outside (a batch's file name, a gateway's message, a reason, metadata, an error that
 * quotes input) shows its control characters as escapes, so it can neither break a line nor send
 * a terminal an escape sequence that hides or forges the lines an operator reads. That is why a
 * formatter returns its lines as an array: a line break inside one element is a value's, and is
 * shown as `\n`.
 */

/**
 * Characters a terminal acts on instead of showing: the controls (C0 with line feed, carriage
 * return and ESC; DEL; C1, where U+009B alone starts a control sequence), the Unicode line and
 * paragraph separators, and the bidirectional embeddings, overrides and isolates that reorder
 * what follows them on a line.
 */
const UNPRINTABLE = /[\p{Cc}\p{Zl}\p{Zp}\u202a-\u202e\u2066-\u2069]/gu;

const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `text` as one line a terminal shows as it is: every character of {@link UNPRINTABLE} becomes a
 * visible escape (`\n`, `\r`, `\t`, `\x1b` below U+0080, `\u009b` from there on). A backslash is
 * left alone, so applying it twice changes nothing (a line is escaped once however many helpers
 * it went through); what it shows is for people, `--json` is the exact value.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const short = SHORT_ESCAPES[c];
    if (short !== undefined) return short;
    const code = c.charCodeAt(0);
    return code < 0x80
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * `value` as JSON whose text holds no terminal control either: JSON escapes U+0000–U+001F inside
 * strings itself (the line breaks and spaces left are its layout, with `indent`), this escapes
 * the rest of {@link UNPRINTABLE} (DEL, C1, …) as `\uXXXX`, which parses back to the same value.
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(UNPRINTABLE, (c) =>
    c < ' ' ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Human text: one line, or lines (a formatter's own line breaks are the array's). */
export type Lines = string | readonly string[];

/** `lines` printed: each line {@link printable}, each ending in a line break. */
function printed(lines: Lines): string {
  return (typeof lines === 'string' ? [lines] : lines).map((l) => `${printable(l)}\n`).join('');
}

export interface Output {
  json: boolean;
  /**
   * Prints a result: as JSON when --json (once, when the command ends), else the lines of
   * `human` (each {@link printable}), or the value as indented JSON without one.
   */
  result(value: unknown, human?: (v: unknown) => Lines): void;
  /** A line (or lines) for the person watching: stdout in human mode, stderr with --json. */
  info(lines: Lines): void;
  /** An error or warning line (or lines): always stderr. */
  error(lines: Lines): void;
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
        // JSON escapes a line break inside a string: its own line breaks are its lines.
        out.write(printed(human ? human(value) : jsonText(value, 2).split('\n')));
        return;
      }
      if (held) throw new Error('a command printed two results in --json mode');
      held = { value };
    },
    info(lines) {
      (json ? err : out).write(printed(lines));
    },
    error(lines) {
      err.write(printed(lines));
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
      out.write(`${jsonText(doc)}\n`);
    },
  };
}

/**
 * A page of a list as aligned text lines (columns two spaces apart), with the `--cursor` of the
 * next page when there is one, or `empty` when the page holds nothing. Cells are measured as they
 * will show ({@link printable}), so an escaped value does not push its row out of line.
 */
export function formatPage(
  cells: string[][],
  next: string | null | undefined,
  empty: string,
): string[] {
  const rows = cells.map((r) => r.map(printable));
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
  return lines.length > 0 ? lines : [empty];
}
