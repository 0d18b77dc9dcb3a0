/**
 * The CLI reads `.env` in its working directory, or the file `--env-file` names, under the real
 * environment (which wins); `--no-env-file` reads none; a named file that cannot be read is bad
 * usage naming it (README, "Configuration").
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatEnvFile } from '../../src/cli/env-file.ts';
import { FAST_ENV } from '../support/app.ts';
import { emptyDir, runCliChild } from '../support/cli-run.ts';
import { cleanupPrefix, createTestRedis, getRedisUrl, uniquePrefix } from '../support/redis.ts';

describe('billing and .env files', () => {
  let dir: string;
  let other: string;
  let vars: Record<string, string>;

  beforeAll(async () => {
    dir = emptyDir('cli-env');
    other = join(dir, 'elsewhere');
    mkdirSync(other);
    vars = {
      SAYSWITCH_SECRET_KEY: FAST_ENV.SAYSWITCH_SECRET_KEY ?? '',
      DATA_ENCRYPTION_KEY: FAST_ENV.DATA_ENCRYPTION_KEY ?? '',
      API_TOKEN: FAST_ENV.API_TOKEN ?? '',
      REDIS_URL: await getRedisUrl(),
      QUEUE_PREFIX: uniquePrefix('clienv'),
      LOG_LEVEL: 'silent',
      SCHEDULER_CRON: '*/5 * * * *',
    };
    writeFileSync(join(dir, '.env'), formatEnvFile(vars));
    // Another file whose only difference would make the commands below fail.
    writeFileSync(join(other, 'bad.env'), formatEnvFile({ ...vars, QUEUE_PREFIX: 'bad prefix!' }));
  });

  // `redis status` opens the queues, and BullMQ writes each queue's meta key on the shared Redis.
  afterAll(async () => {
    const redis = await createTestRedis();
    await cleanupPrefix(redis, vars.QUEUE_PREFIX ?? '');
    await redis.quit();
  });

  const redisStatus = (args: string[], env: Record<string, string> = {}, cwd = dir) =>
    runCliChild([...args, 'redis', 'status', '--json'], env, { cwd });

  it('reads ./.env when present: no variable in the environment, the command still runs', async () => {
    const r = await redisStatus([]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('redis');
  });

  it('the environment wins over the file', async () => {
    const r = await redisStatus([], { QUEUE_PREFIX: 'bad prefix!' });
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('config');
    expect(doc.error.message).toContain('QUEUE_PREFIX');
  });

  it('--no-env-file reads none; --env-file reads the named file instead of ./.env', async () => {
    const none = await redisStatus(['--no-env-file']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('SAYSWITCH_SECRET_KEY: is required');

    const named = await redisStatus(['--env-file', join(other, 'bad.env')]);
    expect(named.code).toBe(2);
    expect(named.stderr).toContain('QUEUE_PREFIX');

    const fromElsewhere = await redisStatus(['--env-file', join(dir, '.env')], {}, other);
    expect(fromElsewhere.code, fromElsewhere.stderr).toBe(0);
  });

  it('a line that is not KEY=value: exit 2 naming the file and line, not a silent default', async () => {
    // `BATCH_APPROVAL: payouts` has no `=`: Node's parser would take it and the next line as one
    // variable name, so both BATCH_APPROVAL and QUEUE_PREFIX would fall back to their defaults.
    const lines = formatEnvFile(vars).split('\n');
    const path = join(other, 'malformed.env');
    writeFileSync(
      path,
      [...lines.slice(0, 2), 'BATCH_APPROVAL: payouts', ...lines.slice(2)].join('\n'),
    );
    const r = await redisStatus(['--env-file', path]);
    expect(r.code, r.stderr).toBe(2);
    const doc = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('env_file');
    expect(doc.error.message).toContain(`${path}:3: not a KEY=value line`);
    expect(doc.error.message).not.toContain('payouts');

    // ./.env (no --env-file) is held to the same rule.
    const cwd = join(dir, 'malformed');
    mkdirSync(cwd);
    writeFileSync(join(cwd, '.env'), `\uFEFF${formatEnvFile(vars)}oops\n`);
    const implicit = await redisStatus([], {}, cwd);
    expect(implicit.code, implicit.stderr).toBe(2);
    expect(implicit.stderr).toContain(`${join(cwd, '.env')}:${lines.length}: not a KEY=value line`);
  });

  it('a byte order mark (an editor wrote it) does not hide the first variable', async () => {
    const cwd = join(dir, 'bom');
    mkdirSync(cwd);
    // SAYSWITCH_SECRET_KEY is the file's first line: with the mark in its name it is missing.
    expect(Object.keys(vars)[0]).toBe('SAYSWITCH_SECRET_KEY');
    writeFileSync(join(cwd, '.env'), `\uFEFF${formatEnvFile(vars)}`);
    const r = await redisStatus([], {}, cwd);
    expect(r.code, r.stderr).toBe(0);
  });

  it('an --env-file that cannot be read: a non-zero exit naming it', async () => {
    const path = '/nonexistent/.env.demo';
    const r = await redisStatus(['--env-file', path]);
    if (r.code === 9) {
      // Node 20 checks a `--env-file` argument itself, even after the script's name
      // (nodejs/node#54232): it names the file and exits 9 before billing runs.
      expect(r.stderr).toContain(`${path}: not found`);
      return;
    }
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      error: {
        code: 'env_file',
        message: `--env-file ${path}: cannot read (no such file or directory)`,
      },
    });
  });
});
