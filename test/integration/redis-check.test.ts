import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { FatalError } from '../../src/kernel/errors.ts';
import {
  ALLOW_EVICTION_ENV,
  RedisEvictionPolicyError,
  assertRedisReady,
  checkRedisEviction,
} from '../../src/infra/redis/redis-check.ts';
import { track } from '../support/leak-check.ts';
import { createTestRedis } from '../support/redis.ts';
import { spawnRedisServer, type RedisServerHandle } from '../support/redis-server.ts';

/** A client of a spawned server, tracked and closed by the test that opens it. */
function connect(server: RedisServerHandle, label: string): Redis {
  return track(new Redis(server.url, { maxRetriesPerRequest: null }), label);
}

describe('checkRedisEviction on the harness Redis', () => {
  it('passes when the policy is noeviction', async () => {
    const redis = await createTestRedis();
    try {
      // The shared Redis is read, never reconfigured: only assert when it is the safe default.
      const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
      const result = await checkRedisEviction(redis, { allowEviction: false });
      expect(result.policy).toBe(policy);
      expect(result.ok).toBe(policy === 'noeviction');
      if (policy === 'noeviction') {
        await expect(assertRedisReady(redis, { allowEviction: false })).resolves.toEqual({
          ok: true,
          policy: 'noeviction',
        });
      }
    } finally {
      await redis.quit();
    }
  });
});

describe('checkRedisEviction on a server with allkeys-lru', () => {
  let server: RedisServerHandle;
  beforeAll(async () => {
    server = track(
      await spawnRedisServer({ maxmemoryPolicy: 'allkeys-lru' }),
      'allkeys-lru server',
    );
  });
  afterAll(async () => {
    await server.close();
  });

  it('fails with a message that explains the risk and names the override', async () => {
    const redis = connect(server, 'lru client');
    try {
      const result = await checkRedisEviction(redis, { allowEviction: false });
      expect(result).toMatchObject({ ok: false, policy: 'allkeys-lru' });
      if (result.ok) throw new Error('unreachable');
      expect(result.message).toContain('"allkeys-lru"');
      expect(result.message).toContain('noeviction');
      expect(result.message).toMatch(/BullMQ loses jobs/);
      expect(result.message).toContain(`${ALLOW_EVICTION_ENV}=true`);
      expect(ALLOW_EVICTION_ENV).toBe('REDIS_ALLOW_EVICTION');
    } finally {
      await redis.quit();
    }
  });

  it('assertRedisReady throws a typed fatal error', async () => {
    const redis = connect(server, 'lru client');
    try {
      const error = await assertRedisReady(redis, { allowEviction: false }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(RedisEvictionPolicyError);
      expect(error).toBeInstanceOf(FatalError);
      const typed = error as RedisEvictionPolicyError;
      expect(typed).toMatchObject({
        code: 'redis_eviction_policy',
        kind: 'fatal',
        policy: 'allkeys-lru',
      });
      expect(typed.message).toContain('REDIS_ALLOW_EVICTION=true');
    } finally {
      await redis.quit();
    }
  });

  it('passes with a warning when eviction is explicitly allowed', async () => {
    const redis = connect(server, 'lru client');
    try {
      const result = await assertRedisReady(redis, { allowEviction: true });
      expect(result.ok).toBe(true);
      expect(result.policy).toBe('allkeys-lru');
      expect(result.warning).toMatch(/REDIS_ALLOW_EVICTION=true/);
    } finally {
      await redis.quit();
    }
  });
});

describe('checkRedisEviction on a cluster', () => {
  let server: RedisServerHandle;
  beforeAll(async () => {
    server = track(await spawnRedisServer({ maxmemoryPolicy: 'allkeys-lru' }), 'lru master');
  });
  afterAll(async () => {
    await server.close();
  });

  it('fails when any master evicts, not only the first one asked', async () => {
    const lru = connect(server, 'lru master client');
    // Every master holds some of our keys: a safe first master must not vouch for the others.
    const safe = { config: () => Promise.resolve(['maxmemory-policy', 'noeviction']) };
    const cluster = {
      isCluster: true,
      status: 'ready',
      nodes: () => [safe, lru],
    } as unknown as Redis;
    try {
      expect(await checkRedisEviction(cluster, { allowEviction: false })).toMatchObject({
        ok: false,
        policy: 'allkeys-lru',
      });
    } finally {
      await lru.quit();
    }
  });
});

describe('checkRedisEviction where CONFIG is disabled (managed Redis)', () => {
  let server: RedisServerHandle;
  beforeAll(async () => {
    server = track(
      await spawnRedisServer({
        maxmemoryPolicy: 'volatile-lru',
        extraArgs: ['--rename-command', 'CONFIG', ''],
      }),
      'no-config server',
    );
  });
  afterAll(async () => {
    await server.close();
  });

  it('falls back to INFO memory', async () => {
    const redis = connect(server, 'no-config client');
    try {
      await expect(redis.config('GET', 'maxmemory-policy')).rejects.toThrow(/unknown command/i);
      const result = await checkRedisEviction(redis, { allowEviction: false });
      expect(result).toMatchObject({ ok: false, policy: 'volatile-lru' });
    } finally {
      await redis.quit();
    }
  });

  it('reads noeviction through INFO too', async () => {
    const safe = track(
      await spawnRedisServer({ extraArgs: ['--rename-command', 'CONFIG', ''] }),
      'safe no-config server',
    );
    const redis = connect(safe, 'safe no-config client');
    try {
      expect(await checkRedisEviction(redis, { allowEviction: false })).toEqual({
        ok: true,
        policy: 'noeviction',
      });
    } finally {
      await redis.quit();
      await safe.close();
    }
  });
});

describe('checkRedisEviction on RESP2', () => {
  it('parses the flat CONFIG GET reply', async () => {
    const server = track(
      await spawnRedisServer({ maxmemoryPolicy: 'allkeys-random' }),
      'resp2 server',
    );
    const redis = track(
      new Redis(server.url, { maxRetriesPerRequest: null, protocol: 2 }),
      'resp2 client',
    );
    try {
      expect(await checkRedisEviction(redis, { allowEviction: false })).toMatchObject({
        ok: false,
        policy: 'allkeys-random',
      });
    } finally {
      await redis.quit();
      await server.close();
    }
  });
});
