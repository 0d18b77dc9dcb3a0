/**
 * `.env` files for the CLI (README, "Configuration"): `billing` reads `.env` in the working
 * directory when there is one, or the file named by `--env-file <path>` (`--no-env-file` reads
 * none). The real environment wins: a variable set in the environment (even to "") is never
 * replaced by the file, and an empty value in the file leaves the variable unset. Parsing is Node's
 * own (`util.parseEnv`, the parser of `node --env-file`): `KEY=value`, `#` comments, single, double
 * or backtick quotes.
 */
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

/** The file read when no `--env-file` is given. */
export const DEFAULT_ENV_FILE = '.env';

/** Reads and parses an env file; throws the file-system error (ENOENT, EACCES, …). */
export function readEnvFile(path: string): Record<string, string> {
  const vars = parseEnv(readFileSync(path, 'utf8'));
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
