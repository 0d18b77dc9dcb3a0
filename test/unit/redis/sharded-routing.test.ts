/**
 * The routers over several shards (REDIS_SHARDS > 1): every job of an intent goes to its shard's
 * dispatcher (src/infra/queues/sharded-dispatcher.ts), and an event id tagged `s<n>/` is read
 * from shard n's stream (src/infra/redis/sharded-event-log.ts). Stubs record which shard was asked.
 */
import { describe, expect, it } from 'vitest';
import { shardedDispatcher } from '../../../src/infra/queues/sharded-dispatcher.ts';
import type { QueueDispatcher } from '../../../src/infra/queues/dispatcher.ts';
import { ShardedEventLog } from '../../../src/infra/redis/sharded-event-log.ts';
import { keyLayout } from '../../../src/infra/redis/shards.ts';
import type { EventLog } from '../../../src/kernel/ports.ts';

const layout = keyLayout({ prefix: 'billing', shards: 3 });
/** An API payment key in shard 2 (FNV-1a, see cluster-config.test.ts). */
const KEY = 'api_k0';

function stubDispatchers(calls: string[]): QueueDispatcher[] {
  return [0, 1, 2].map((n) => {
    const record =
      (what: string) =>
      (...args: unknown[]) => {
        calls.push(`${n}:${what}:${typeof args[0] === 'string' ? args[0] : 'intent'}`);
        return Promise.resolve(undefined);
      };
    return {
      submit: record('submit'),
      reconcile: record('reconcile'),
      reconcileEarly: record('reconcileEarly'),
      rerunSubmit: record('rerunSubmit'),
      submitJobState: record('submitJobState'),
    } as unknown as QueueDispatcher;
  });
}

describe('the sharded dispatcher', () => {
  it("sends every job of an intent to its shard's queues", async () => {
    expect(layout.shardOf(KEY)).toBe(2);
    const calls: string[] = [];
    const d = shardedDispatcher(stubDispatchers(calls), layout);
    const intent = { key: KEY } as Parameters<QueueDispatcher['submit']>[0];
    await d.submit(intent);
    await d.reconcile(intent, {
      delayMs: 0,
      cause: 'manual',
    });
    await d.reconcileEarly(KEY, 'ref_1');
    await d.submitJobState(intent);
    expect(calls).toEqual([
      '2:submit:intent',
      '2:reconcile:intent',
      `2:reconcileEarly:${KEY}`,
      '2:submitJobState:intent',
    ]);
  });
});

describe('failed jobs over shards', () => {
  it("reads the group's queue for a job of no intent, every shard's for an intent's job", async () => {
    const asked: string[] = [];
    const shards = [0, 1, 2].map(
      (n) =>
        ({
          failedJobs: (name: string) => {
            asked.push(`${n}:${name}`);
            return Promise.resolve([{ id: `j${n}`, failedAt: n * 10 }]);
          },
        }) as unknown as QueueDispatcher,
    );
    const d = shardedDispatcher(shards, layout);
    const opts = { failedBefore: 100, limit: 10 };
    expect((await d.failedJobs('subscriptions.dunning', opts)).map((j) => j.id)).toEqual(['j0']);
    expect(asked).toEqual(['0:subscriptions.dunning']);
    asked.length = 0;
    // Newest failure first across the shards.
    expect((await d.failedJobs('charges.submit', opts)).map((j) => j.id)).toEqual([
      'j2',
      'j1',
      'j0',
    ]);
    expect(asked).toEqual(['0:charges.submit', '1:charges.submit', '2:charges.submit']);
  });
});

describe('the sharded event log', () => {
  it("reads an id tagged s<n>/ from shard n's stream, an untagged one from the group's", async () => {
    const logs = [0, 1, 2].map(
      (n) =>
        ({
          entry: (id: string) => Promise.resolve({ shard: String(n), id }),
        }) as unknown as EventLog,
    );
    const events = new ShardedEventLog(logs);
    expect(await events.entry('s2/5-0')).toEqual({ shard: '2', id: '5-0' });
    expect(await events.entry('5-0')).toEqual({ shard: '0', id: '5-0' });
    expect(await events.entry('s7/5-0')).toBeUndefined();
  });
});
