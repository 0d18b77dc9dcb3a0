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
  EnvFileSyntaxError,
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

  it('refuses a line that is not KEY=value, naming the line: the next variable is not swallowed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'env-malformed-'));
    const cases: [string, number][] = [
      // A missing `=` (YAML habit): util.parseEnv reads `BATCH_APPROVAL: all\nQUEUE_PREFIX` as one
      // name, so BATCH_APPROVAL and QUEUE_PREFIX both fall back to their defaults, silently.
      ["API_TOKEN='x'\nBATCH_APPROVAL: all\n\n# the deployment\nQUEUE_PREFIX='prod'\n", 2],
      ["=value\nBATCH_APPROVAL='payouts'\n", 1],
      ["export BATCH_APPROVAL\nQUEUE_PREFIX='prod'\n", 1],
      ["QUEUE_PREFIX='prod'\r\nREDIS_URL 'redis://10.0.0.5:6379'\r\n", 2],
    ];
    for (const [text, line] of cases) {
      const file = join(dir, `.env-${line}`);
      writeFileSync(file, text);
      let thrown: unknown;
      try {
        readEnvFile(file);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, JSON.stringify(text)).toBeInstanceOf(EnvFileSyntaxError);
      expect((thrown as EnvFileSyntaxError).line, JSON.stringify(text)).toBe(line);
      // Never the line's text: it may hold a secret.
      expect((thrown as Error).message).not.toContain('10.0.0.5');
    }
  });

  it('still reads comments, export, spaces around =, CRLF and quoted values spanning lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'env-valid-'));
    const file = join(dir, '.env');
    writeFileSync(
      file,
      "# c\r\nexport A=1\r\n  B = 'two'  \r\nC=\"multi\nline # not a comment\nvalue\"\nD=`x`\nE='it''s'\n",
    );
    expect(readEnvFile(file)).toEqual(parseEnv(readFileSync(file, 'utf8')));
    expect(readEnvFile(file)).toMatchObject({
      A: '1',
      B: 'two',
      C: 'multi\nline # not a comment\nvalue',
      D: 'x',
    });
    expect(() => readEnvFile(ENV_EXAMPLE)).not.toThrow();
  });

  it('drops a byte order mark: the first variable keeps its name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'env-bom-'));
    const file = join(dir, '.env');
    writeFileSync(file, "\uFEFFQUEUE_PREFIX='prod'\nBATCH_APPROVAL='payouts'\n");
    expect(readEnvFile(file)).toEqual({ QUEUE_PREFIX: 'prod', BATCH_APPROVAL: 'payouts' });
  });

  it('the environment wins over the file, even when set to an empty string', () => {
    expect(
      fileAdditions({ A: 'file', B: 'file', C: 'file' }, { A: 'env', B: '', D: 'env' }),
    ).toEqual({ C: 'file' });
  });
});
