/**
 * The reconcile sweep over several shards when one cannot be read (its Redis Cluster master down,
 * not yet failed over). Before, the sharded store's reads were all or nothing: one shard's error
 * failed the whole sweep, so due checks, expired leases and orphans of every healthy shard waited
 * for the broken one. Now the sweep goes on with the shards that answered and names the one that
 * did not; lists stay all or nothing. Real Redis; the down shard is a client whose reads fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { Intent } from '../../src/kernel/payment.ts';
import { createLogger } from '../../src/infra/logger.ts';
import type { Dispatcher } from '../../src/infra/queues/dispatcher.ts';
import { RedisIntentStore } from '../../src/payments/store/intent-store.ts';
import { ShardedIntentStore } from '../../src/payments/store/sharded-store.ts';
import { runSweep } from '../../src/payments/sweep.ts';
import { createTestCharge } from '../support/intents.ts';
import { cleanupPrefix, createTestRedis, uniquePrefix } from '../support/redis.ts';

let redis: Redis;
const prefixes = [uniquePrefix('sweep-shard0'), uniquePrefix('sweep-shard1')];

beforeAll(async () => {
  redis = await createTestRedis();
});
afterAll(async () => {
  for (const p of prefixes) await cleanupPrefix(redis, p);
  await redis.quit();
});

/** A client whose sorted-set reads fail, as a shard whose master is down. */
function down(inner: Redis): Redis {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'zrangebyscore') {
        return () => Promise.reject(new Error('CLUSTERDOWN The cluster is down'));
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

/** Shard 1 holds the keys naming it, shard 0 the others. */
const layout = { shardOf: (key: string) => (key.includes('-s1-') ? 1 : 0) };

/** A charge of `shard` in `pending`, its next check due at 50. */
async function pendingDue(store: RedisIntentStore, name: string): Promise<IntentKey> {
  const key = await createTestCharge(store, name);
  await store.transition(key, 'submitting', 2);
  await store.transition(key, 'pending', 3, { reconcileAt: 50 });
  return key;
}

describe('the sweep with one shard unreadable', () => {
  it('sweeps the shards that answer and names the one that did not', async () => {
    const healthy = new RedisIntentStore(redis, prefixes[0]!);
    const broken = new RedisIntentStore(redis, prefixes[1]!);
    const dueHere = await pendingDue(healthy, 'sweep-s0-due');
    await pendingDue(broken, 'sweep-s1-due');

    const failures: [number, string, string][] = [];
    const store = new ShardedIntentStore(
      [healthy, new RedisIntentStore(down(redis), prefixes[1]!)],
      layout,
      (shard, what, err) => failures.push([shard, what, (err as Error).message]),
    );
    const checked: string[] = [];
    const dispatcher = {
      reconcile: (intent: Intent) => {
        checked.push(intent.key);
        return Promise.resolve();
      },
      submitJobState: () => Promise.resolve('waiting'),
    } as unknown as Dispatcher;
    const result = await runSweep({
      store,
      dispatcher,
      clock: { now: () => 100 },
      logger: createLogger({ level: 'silent' }),
      orphanAfterMs: 1_000,
    });

    expect(checked).toEqual([dueHere]);
    expect(result.due).toBe(1);
    // Each of the sweep's three queries named the shard it could not read.
    expect(failures.map(([shard, what]) => [shard, what])).toEqual([
      [1, 'dueForReconcile'],
      [1, 'expiredLeases'],
      [1, 'queuedSince'],
    ]);
    expect(failures[0]![2]).toContain('CLUSTERDOWN');
  });

  it('fails when no shard answers, and keeps lists all or nothing', async () => {
    const store = new ShardedIntentStore(
      [
        new RedisIntentStore(down(redis), prefixes[0]!),
        new RedisIntentStore(down(redis), prefixes[1]!),
      ],
      layout,
    );
    await expect(store.dueForReconcile(100, 10)).rejects.toThrow('CLUSTERDOWN');
    const oneDown = new ShardedIntentStore(
      [new RedisIntentStore(redis, prefixes[0]!), new RedisIntentStore(down(redis), prefixes[1]!)],
      layout,
    );
    await expect(oneDown.keysUpdatedBefore('pending', 100, 10)).rejects.toThrow('CLUSTERDOWN');
  });
});
