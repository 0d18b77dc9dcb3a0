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
