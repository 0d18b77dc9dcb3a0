/**
 * Env files (src/cli/env-file.ts, .env.example): what `billing` reads with Node's own parser is
 * what a POSIX shell reads with `set -a; . ./file; set +a` — including values a shell would
 * otherwise expand (`*` in cron lines, `$`, `{…}`) — and the real environment wins over a file.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  fileAdditions,
  formatEnvFile,
  quoteEnvValue,
  readEnvFile,
} from '../../src/cli/env-file.ts';

const ENV_EXAMPLE = new URL('../../.env.example', import.meta.url).pathname;

/**
 * What `sh` sees after sourcing `file`, in a directory full of files (an unquoted `*` would turn
 * into their names). Only the variables the file names are returned.
 */
function sourced(file: string, names: readonly string[]): Record<string, string | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'env-source-'));
  for (const f of ['a.txt', 'b.txt', 'c.txt']) writeFileSync(join(dir, f), '');
  const script = `set -a; . '${file}'; set +a; exec '${process.execPath}' -e 'process.stdout.write(JSON.stringify(process.env))'`;
  const out = execFileSync('sh', ['-c', script], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
  });
  const env = JSON.parse(out) as Record<string, string>;
  return Object.fromEntries(names.map((n) => [n, env[n]]));
}

describe('.env.example', () => {
  it('can be sourced by a shell: every value reads as billing reads it (cron lines included)', () => {
    const text = readFileSync(ENV_EXAMPLE, 'utf8');
    const parsed = parseEnv(text);
    const names = Object.keys(parsed);
    expect(names.length).toBeGreaterThan(30);
    const shell = sourced(ENV_EXAMPLE, names);
    for (const name of names) expect(shell[name], name).toBe(parsed[name]);
    expect(shell.SCHEDULER_CRON).toBe('* * * * *');
    expect(shell.SAYSWITCH_VERIFY_PATH).toBe('/api/v1/transaction/verify/{reference}');
  });
});

describe('env files', () => {
  const tricky: Record<string, string> = {
    CRON: '*/5 * * * * *',
    DOLLAR: 'pa$$word $HOME ${HOME}',
    HASH: 'a#b # c',
    BRACES: '/v1/{reference}',
    SPACES: '  padded  ',
    QUOTE: "it's",
    URL: 'redis://127.0.0.1:6379',
  };

  it('formatEnvFile writes values that the shell and readEnvFile both read back unchanged', () => {
    const dir = mkdtempSync(join(tmpdir(), 'env-format-'));
    const file = join(dir, '.env.demo');
    writeFileSync(file, formatEnvFile(tricky, ['a comment', '', 'another']));
    expect(readEnvFile(file)).toEqual(tricky);
    expect(sourced(file, Object.keys(tricky))).toEqual(tricky);
    expect(readFileSync(file, 'utf8')).toMatch(/^# a comment\n#\n# another\nCRON='/);
  });

  it('refuses a value no quoting can carry', () => {
    expect(() => quoteEnvValue('two\nlines')).toThrow();
    expect(() => quoteEnvValue(`both ' and " $`)).toThrow();
  });

  it('an empty value in a file leaves the variable unset', () => {
    const dir = mkdtempSync(join(tmpdir(), 'env-empty-'));
    const file = join(dir, '.env');
    writeFileSync(file, "API_TOKEN=\nQUEUE_PREFIX='demo'\n");
    expect(readEnvFile(file)).toEqual({ QUEUE_PREFIX: 'demo' });
  });

  it('the environment wins over the file, even when set to an empty string', () => {
    expect(
      fileAdditions({ A: 'file', B: 'file', C: 'file' }, { A: 'env', B: '', D: 'env' }),
    ).toEqual({ C: 'file' });
  });
});
