/**
 * Continuing from the demo in another shell, as its output suggests: while `billing demo` runs,
 * `.env.demo` (in its working directory) holds everything the CLI needs — Redis, the demo's key
 * prefix, the sandbox, the throwaway secrets — so `billing --env-file .env.demo batch status
 * demo-payouts` works from a fresh shell with nothing set. With `--json` the demo's lines go to
 * stderr and its report is the one document on stdout when it stops.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readEnvFile } from '../../src/cli/env-file.ts';
import { BIN } from '../support/child.ts';
import { emptyDir, runCliChild, spawnCli } from '../support/cli-run.ts';
import { trackChild } from '../support/leak-check.ts';
import { getRedisUrl } from '../support/redis.ts';
import { findFreePort } from '../support/redis-server.ts';

describe('billing demo: continuing in another shell', () => {
  it('.env.demo lets a fresh shell use the CLI against the running demo; removed when it stops', async () => {
    const demoDir = emptyDir('demo-continue');
    const shellDir = emptyDir('demo-other-shell');
    const demo = spawnCli(
      ['demo', '--json', '--timeout', '120'],
      { REDIS_URL: await getRedisUrl(), PORT: String(await findFreePort()) },
      { cwd: demoDir },
    );
    trackChild(demo, 'billing demo');
    await demo.waitForStderr('Running until Ctrl-C', 120_000);
    const envFile = join(demoDir, '.env.demo');
    expect(demo.stderr()).toContain('Environment of this demo');
    expect(demo.stderr()).toContain('npx billing --env-file .env.demo batch status demo-payouts');
    expect(demo.stdout()).toBe('');
    const vars = readEnvFile(envFile);
    expect(Object.keys(vars)).toEqual(
      expect.arrayContaining([
        'REDIS_URL',
        'QUEUE_PREFIX',
        'SAYSWITCH_BASE_URL',
        'SAYSWITCH_SECRET_KEY',
        'DATA_ENCRYPTION_KEY',
        'API_TOKEN',
      ]),
    );
    expect(readFileSync(envFile, 'utf8')).toMatch(/^QUEUE_PREFIX='demo-\d{14}-[0-9a-f]{12}'$/m);

    // Another shell, another directory, nothing in the environment but PATH and HOME.
    const status = await runCliChild(
      ['--env-file', envFile, 'batch', 'status', 'demo-payouts', '--json'],
      {},
      { cwd: shellDir },
    );
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ id: 'demo-payouts', state: 'completed' });

    // The hint as printed, from the demo's directory; and the file loaded into a POSIX shell.
    const show = await runCliChild(
      ['--env-file', '.env.demo', 'payments', 'show', 'api_demo-charge-1', '--json'],
      {},
      { cwd: demoDir },
    );
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ key: 'api_demo-charge-1' });
    const sourced = await promisify(execFile)(
      'sh',
      [
        '-c',
        `set -a; . ./.env.demo; set +a; exec '${process.execPath}' '${BIN}' redis status --json`,
      ],
      { cwd: demoDir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' } },
    );
    expect(JSON.parse(sourced.stdout)).toHaveProperty('epoch');

    demo.kill('SIGINT');
    expect(await demo.exited, demo.stderr()).toBe(0);
    const report = JSON.parse(demo.stdout()) as {
      done: boolean;
      prefix: string;
      envFile: string;
      summary: Record<string, Record<string, { count: number }>>;
    };
    expect(report).toMatchObject({ done: true, prefix: vars.QUEUE_PREFIX, envFile: '.env.demo' });
    expect(Object.keys(report.summary)).toContain('succeeded');
    // The demo removed its keys, and with them the file that pointed at them.
    expect(existsSync(envFile)).toBe(false);
  }, 180_000);
});
