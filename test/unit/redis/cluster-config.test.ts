/** The Redis Cluster and shard settings: config parsing and the key layout (infra/redis/shards.ts). */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/config.ts';
import { fnv1a, keyLayout, keySlot, shardNames } from '../../../src/infra/redis/shards.ts';
import { FAST_ENV } from '../../support/app.ts';

function problems(env: Record<string, string>) {
  try {
    loadConfig({ ...FAST_ENV, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('cluster configuration', () => {
  it('parses seed nodes, shards and the served subset', () => {
    const c = loadConfig({
      ...FAST_ENV,
      REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-2.internal:7001,[::1]:7002',
      REDIS_SHARDS: '4',
      REDIS_SHARDS_SERVED: '3,1,1',
    });
    expect(c.redis.clusterNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-2.internal', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(c.redis.shards).toBe(4);
    expect(c.redis.shardsServed).toEqual([1, 3]);
  });

  it('accepts QUEUE_PREFIX={billing} as billing (the layout adds the tags)', () => {
    expect(loadConfig({ ...FAST_ENV, QUEUE_PREFIX: '{billing}' }).redis.prefix).toBe('billing');
    expect(problems({ QUEUE_PREFIX: '{bil}ling}' }).map((p) => p.variable)).toEqual([
      'QUEUE_PREFIX',
    ]);
  });

  it('names the variable of each bad value', () => {
    const found = problems({
      REDIS_CLUSTER_NODES: '10.0.0.1',
      REDIS_SHARDS: '0',
      REDIS_SHARDS_SERVED: 'a',
    });
    expect(found.map((p) => p.variable).sort()).toEqual([
      'REDIS_CLUSTER_NODES',
      'REDIS_SHARDS',
      'REDIS_SHARDS_SERVED',
    ]);
    expect(problems({ REDIS_SHARDS: '2', REDIS_SHARDS_SERVED: '0,2' })).toEqual([
      {
        variable: 'REDIS_SHARDS_SERVED',
        message: 'shard 2 does not exist with REDIS_SHARDS=2 (shards are 0..1)',
      },
    ]);
  });

  it('refuses a gateway rate limit below one call per second per shard (the shards would exceed it)', () => {
    expect(problems({ REDIS_SHARDS: '3', SAYSWITCH_RATE_LIMIT_PER_SEC: '2' })).toEqual([
      {
        variable: 'SAYSWITCH_RATE_LIMIT_PER_SEC',
        message:
          'must be at least REDIS_SHARDS (3): each shard sends at least one gateway call per second, so 2 per second cannot be kept across 3 shards',
      },
    ]);
    expect(problems({ REDIS_SHARDS: '3', SAYSWITCH_RATE_LIMIT_PER_SEC: '3' })).toEqual([]);
  });

  it('names a bad REDIS_CLUSTER_NODES entry by its position, never echoing it (a password)', () => {
    const secret = 'S3cretPass';
    const cases: [string, string][] = [
      [`redis://:${secret}@10.0.0.1:7000,10.0.0.2:7000`, 'entry 1 of 2 is a URL'],
      [`10.0.0.1:7000,rediss://default:${secret}@10.0.0.2:7000`, 'entry 2 of 2 is a URL'],
      [`10.0.0.1:7000,default:${secret}@10.0.0.2:7000`, 'entry 2 of 2 is not host:port'],
      [`10.0.0.1:7000,${secret}`, 'entry 2 of 2 is not host:port'],
    ];
    for (const [value, start] of cases) {
      const found = problems({ REDIS_CLUSTER_NODES: value });
      expect(found).toEqual([
        { variable: 'REDIS_CLUSTER_NODES', message: expect.stringMatching(`^${start}`) as string },
      ]);
      let text = '';
      try {
        loadConfig({ ...FAST_ENV, REDIS_CLUSTER_NODES: value });
      } catch (err) {
        text = String(err);
      }
      expect(text).toContain('REDIS_CLUSTER_NODES: entry ');
      expect(text).not.toContain(secret);
    }
  });
});

describe('key layout', () => {
  it('keeps standalone one-shard keys exactly as before', () => {
    const l = keyLayout({ prefix: 'billing' });
    expect([l.group, l.shard(0), l.allPrefixes()]).toEqual(['billing', 'billing', ['billing']]);
    expect(l.shardOf('api_x')).toBe(0);
  });

  it('tags every group on a cluster and spreads only API payments', () => {
    const l = keyLayout({ prefix: 'billing', shards: 3, cluster: true });
    expect(l.group).toBe('{billing}');
    expect(l.allPrefixes()).toEqual(['{billing}', '{billing:s1~3}', '{billing:s2~3}']);
    const spread = new Set(Array.from({ length: 60 }, (_, i) => l.shardOf(`api_k${i}`)));
    expect(spread).toEqual(new Set([0, 1, 2]));
    expect(l.shardOf('bat_b1_7')).toBe(0);
    expect(l.shardOf('sub_s1_20250101')).toBe(0);
  });

  it("puts a refund in its charge's shard (its reservation script touches both)", () => {
    const l = keyLayout({ prefix: 'billing', shards: 3, cluster: true });
    for (let i = 0; i < 30; i++) {
      const charge = `api_k${i}`;
      for (const n of [1, 2, 99]) expect(l.shardOf(`rf${n}_${charge}`)).toBe(l.shardOf(charge));
    }
    expect(l.shardOf('rf1_bat_b1_7')).toBe(0);
  });

  it('puts the shards in different thirds of the slot space (one per master of three)', () => {
    for (const prefix of ['billing', 'acme', 'x']) {
      const thirds = shardNames(prefix, 3).map((n) => Math.floor((keySlot(n) * 3) / 16_384));
      expect(new Set(thirds).size).toBe(3);
    }
  });

  it("never moves an intent's shard: FNV-1a of the key modulo the count, in any mode", () => {
    // An intent is looked up only in the shard its key hashes to: a change of this mapping would
    // hide every intent a running deployment already wrote.
    const keys = ['api_k0', 'api_k1', 'api_k2', 'api_k3', 'api_k4', 'api_order-1001'];
    const golden: Record<number, number[]> = {
      2: [1, 0, 1, 0, 1, 1],
      3: [2, 0, 0, 1, 1, 1],
      4: [3, 0, 1, 2, 3, 1],
    };
    for (const [shards, want] of Object.entries(golden)) {
      for (const cluster of [false, true]) {
        const l = keyLayout({ prefix: 'billing', shards: Number(shards), cluster });
        expect(
          keys.map((k) => l.shardOf(k)),
          `${shards} shards, cluster ${cluster}`,
        ).toEqual(want);
      }
    }
  });

  it('refuses a served shard the layout does not have', () => {
    expect(() => keyLayout({ prefix: 'billing', shards: 2, served: [2] })).toThrow(RangeError);
    expect(() => keyLayout({ prefix: 'billing', shards: 2, served: [-1] })).toThrow(RangeError);
    expect(keyLayout({ prefix: 'billing', shards: 2, served: [1] }).served).toEqual([1]);
  });

  it('hashes stably: CRC16 as Redis, FNV-1a as published', () => {
    expect(keySlot('123456789')).toBe(12_739);
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
  });
});
