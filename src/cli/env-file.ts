/**
 * `.env` files for the CLI (README, "Configuration"): `billing` reads `.env` in the working
 * directory when there is one, or the file named by `--env-file <path>` (`--no-env-file` reads
 * none). The real environment wins: a variable set in the environment (even to "") is never
 * replaced by the file, and an empty value in the file leaves the variable unset. Parsing is Node's
 * own (`util.parseEnv`, the parser of `node --env-file`): `KEY=value`, `#` comments, single, double
 * or backtick quotes. A line that is not `KEY=value` is refused naming its line (the parser would
 * swallow the next variable into its name), and a byte order mark is dropped.
 */
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

/** The file read when no `--env-file` is given. */
export const DEFAULT_ENV_FILE = '.env';

/**
 * A line of an env file that is not `KEY=value`. Node's parser does not refuse one: it reads the
 * text up to the next `=`, a later line's variable included, as one variable name, so that
 * variable silently falls back to its default. The message names the line, never its text (it
 * may hold a secret).
 */
export class EnvFileSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly why: string,
  ) {
    super(`line ${line}: ${why}`);
    this.name = 'EnvFileSyntaxError';
  }
}

const QUOTES = new Set(['"', "'", '`']);
/** `KEY=…`, `export KEY=…`, spaces allowed around the `=` (what `util.parseEnv` reads). */
const ASSIGNMENT = /^(?:export\s+)?[^\s=#'"`]+\s*=/;

/**
 * Throws {@link EnvFileSyntaxError} for the first line that is neither blank, a `#` comment, a
 * `KEY=value` line nor inside a quoted value spanning lines (read as `util.parseEnv` reads them).
 */
export function checkEnvText(text: string): void {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!ASSIGNMENT.test(line)) {
      throw new EnvFileSyntaxError(
        i + 1,
        'not a KEY=value line (util.parseEnv would read it and the next variable as one name)',
      );
    }
    const value = line.slice(line.indexOf('=') + 1).trimStart();
    const quote = value[0];
    if (quote !== undefined && QUOTES.has(quote) && !value.includes(quote, 1)) {
      // A quoted value that spans lines, up to the next line holding its quote (unterminated:
      // the parser reads it as a plain value of this one line).
      let end = i + 1;
      while (end < lines.length && !(lines[end] ?? '').includes(quote)) end++;
      if (end < lines.length) i = end;
    }
  }
}

/**
 * Reads and parses an env file; throws the file-system error (ENOENT, EACCES, …), or
 * {@link EnvFileSyntaxError} for a line that is not `KEY=value`. A UTF-8 byte order mark (an
 * editor's) is dropped: the parser would make it part of the first variable's name.
 */
export function readEnvFile(path: string): Record<string, string> {
  const text = readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
  checkEnvText(text);
  const vars = parseEnv(text);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

/** The file's variables that the real environment does not set: what the file adds. */
export function fileAdditions(
  file: Record<string, string>,
  env: Record<string, string | undefined>,
): Record<string, string> {
  return Object.fromEntries(Object.entries(file).filter(([k]) => env[k] === undefined));
}

/** A value quoted so that a POSIX shell (`set -a; . ./file`) and `util.parseEnv` read it back. */
export function quoteEnvValue(value: string): string {
  if (/[\n\r]/.test(value)) throw new Error('an env file value cannot span lines');
  if (!value.includes("'")) return `'${value}'`;
  if (!/["$`\\]/.test(value)) return `"${value}"`;
  throw new Error('an env file value cannot hold both quote kinds');
}

/** `KEY='value'` lines after `#` comment lines: safe to `source` and to read with --env-file. */
export function formatEnvFile(vars: Record<string, string>, comments: readonly string[] = []) {
  return [
    ...comments.map((c) => (c === '' ? '#' : `# ${c}`)),
    ...Object.entries(vars).map(([k, v]) => `${k}=${quoteEnvValue(v)}`),
    '',
  ].join('\n');
}
