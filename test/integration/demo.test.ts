/**
 * `billing demo --exit-when-done` as a user runs it (against the harness Redis, on a free port),
 * and how the demo finds a Redis: a local one, a throwaway `redis-server` it starts, or a clear
 * message when neither is possible.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { findOrStartRedis, NoRedisError } from '../../src/infra/redis/local-redis.ts';
import { runBilling } from '../support/child.ts';
import { runCliChild } from '../support/cli-run.ts';
import { track } from '../support/leak-check.ts';
import { getRedisUrl } from '../support/redis.ts';
import { findFreePort } from '../support/redis-server.ts';

describe('billing demo', () => {
  it('--exit-when-done: every payment final, a summary, exit 0, and its keys removed', async () => {
    const redisUrl = await getRedisUrl();
    const envOut = join(mkdtempSync(join(tmpdir(), 'demo-test-')), '.env.demo');
    const r = await runBilling(
      ['demo', '--exit-when-done', '--timeout', '120', '--env-out', envOut],
      {
        REDIS_URL: redisUrl,
        PORT: String(await findFreePort()),
      },
    );
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('Dashboard: http://127.0.0.1:');
    // The demo brings its own dashboard credentials and read token, and says what they are.
    expect(r.output).toMatch(/Dashboard: \S+\/admin\/queues {2}\(user \S+, password \S+\)/);
    expect(r.output).not.toContain('(none)');
    expect(r.output).toMatch(/Bearer \S+ \(API_READ_TOKEN, reads only\)/);
    expect(r.output).toContain('Seeded batch demo-payouts');
    expect(r.output).toContain('Every payment reached a final state');
    expect(r.output).toMatch(/succeeded\s+\d+ × /);
    // The environment to continue from another shell: printed, written while it ran, then removed.
    expect(r.output).toContain(`(written to ${envOut})`);
    expect(r.output).toMatch(/^ {2}QUEUE_PREFIX='demo-\d{14}-[0-9a-f]{12}'$/m);
    expect(r.output).toContain(`npx billing --env-file ${envOut} batch status demo-payouts`);
    expect(existsSync(envOut)).toBe(false);

    const prefix = /key prefix (\S+)/.exec(r.output)?.[1];
    expect(prefix).toMatch(/^demo-/);
    const redis = track(new Redis(redisUrl), 'demo test client');
    try {
      const [, keys] = await redis.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 10_000);
      expect(keys).toEqual([]);
    } finally {
      await redis.quit();
    }
  }, 150_000);
});

describe('billing demo --json with a REDIS_URL holding a password', () => {
  it('the report on stdout names Redis without the password', async () => {
    const redisUrl = new URL(await getRedisUrl());
    if (redisUrl.password !== '') return; // the harness Redis has its own password: nothing to add
    // A Redis without a password accepts a client sending one (ioredis warns, then goes on).
    redisUrl.password = 's3cret-redis-pw';
    const r = await runCliChild(
      ['--json', 'demo', '--exit-when-done', '--timeout', '0', '--no-env-out'],
      { REDIS_URL: redisUrl.href, PORT: String(await findFreePort()) },
    );
    // --timeout 0: the summary so far, exit 1 (payments in flight), the report in the document.
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as { redis: string; error: { code: string } };
    expect(doc.error.code).toBe('in_flight');
    expect(doc.redis).toBe(`redis://${redisUrl.host}`);
    expect(r.stdout).not.toContain('s3cret-redis-pw');
    expect(r.stderr).toMatch(/^Redis: redis:\/\/[^@\s]+ \(REDIS_URL\)/m);
  }, 150_000);
});

describe('findOrStartRedis', () => {
  it('REDIS_URL wins when set', async () => {
    const r = await findOrStartRedis('redis://example.invalid:6380');
    expect(r).toMatchObject({ url: 'redis://example.invalid:6380', source: 'REDIS_URL' });
  });

  it('starts a throwaway redis-server when nothing answers locally, and stops it', async () => {
    const r = await findOrStartRedis(undefined, { localPort: await findFreePort() });
    expect(r.source).toBe('spawned');
    const client = track(new Redis(r.url, { maxRetriesPerRequest: 1 }), 'spawned demo redis');
    try {
      expect(await client.ping()).toBe('PONG');
      const [, policy] = (await client.config('GET', 'maxmemory-policy')) as [string, string];
      expect(policy).toBe('noeviction');
    } finally {
      await client.quit();
      await r.stop();
    }
  });

  it('says what to do when no Redis answers and none can be started', async () => {
    const attempt = findOrStartRedis(undefined, {
      localPort: await findFreePort(),
      redisServer: '/nonexistent/redis-server',
    });
    await expect(attempt).rejects.toBeInstanceOf(NoRedisError);
    await expect(attempt).rejects.toThrow(/No Redis reachable.*ENOENT.*REDIS_URL=redis:\/\//s);
  });
});
