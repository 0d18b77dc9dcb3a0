/**
 * Readiness's write probe (src/infra/redis/redis-check.ts `probeWrites`): every key group must
 * take a write. On a cluster each group can sit on another master, so one group refusing (its
 * master down, failing over, out of memory) is not ready, whatever the others say.
 */
import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { probeWrites } from '../../../src/infra/redis/redis-check.ts';

/** A connection whose SETs under `refused` fail as a master that is down would fail them. */
function writes(refused: string) {
  const written: string[] = [];
  const redis = {
    set(key: string) {
      if (key.startsWith(`${refused}:`)) return Promise.reject(new Error('CLUSTERDOWN'));
      written.push(key);
      return Promise.resolve('OK');
    },
  } as unknown as Redis;
  return { redis, written };
}

describe('probeWrites', () => {
  it('writes under every prefix', async () => {
    const { redis, written } = writes('none');
    expect(await probeWrites(redis, ['{b}', '{b:s1}', '{b:s2}'])).toBe(true);
    expect(written.sort()).toEqual(['{b:s1}:readyz', '{b:s2}:readyz', '{b}:readyz']);
  });

  it('fails when any one group refuses the write, the last one too', async () => {
    const { redis } = writes('{b:s2}');
    await expect(probeWrites(redis, ['{b}', '{b:s1}', '{b:s2}'])).rejects.toThrow('CLUSTERDOWN');
  });
});
