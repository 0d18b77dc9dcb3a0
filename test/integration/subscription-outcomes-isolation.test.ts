/**
 * One subscription whose payment outcome cannot be applied (here its record cannot be read: any
 * failure that keeps recurring for one subscription) does not hold back the outcomes of the
 * others read with it. The whole read used to fail together, stay pending together and be
 * claimed together again, so an unrelated subscription's failed renewal never started dunning.
 * Each subscription's outcomes are now retried alone once the read's call fails. Real Redis
 * stream; the subscription store is a stub that fails for one subscription.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BillingEvent } from '../../src/kernel/events.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { RedisEventLog } from '../../src/infra/redis/event-log.ts';
import { fieldsOf } from '../../src/infra/redis/stream-consumer.ts';
import {
  SUBSCRIPTIONS_GROUP,
  startSubscriptionOutcomes,
  type OutcomeConsumerDeps,
} from '../../src/subscriptions/outcome-consumer.ts';
import { track } from '../support/leak-check.ts';
import { until } from '../support/poll.ts';
import { cleanupPrefix, getRedisUrl, uniquePrefix } from '../support/redis.ts';

let redis: Redis;
const prefix = uniquePrefix('outiso');

beforeAll(async () => {
  redis = track(new Redis(await getRedisUrl(), { maxRetriesPerRequest: null }), 'outiso');
});

afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

const failedRenewal = (sub: string): BillingEvent => ({
  id: `evt_sub_${sub}_20250101_1_failed`,
  type: 'payment.failed',
  at: 1_700_000_000_000,
  data: {
    key: `sub_${sub}_20250101`,
    attempt: 1,
    subscriptionId: sub,
    origin: 'subscription',
    reason: 'declined',
  },
});

describe('the subscription outcome consumer', () => {
  it('applies the outcomes of the other subscriptions read with one it cannot apply', async () => {
    const events = new RedisEventLog(redis, prefix);
    await events.append(failedRenewal('poison'));
    await events.append(failedRenewal('innocent'));
    const asked: string[][] = [];
    // `poison`'s record cannot be read; the others do not exist, which applies their outcome as
    // done (an outcome for a subscription that is gone).
    const subs = {
      getMany: (ids: string[]) => {
        asked.push(ids);
        if (ids.includes('poison')) return Promise.reject(new Error('the record does not parse'));
        return Promise.resolve(ids.map(() => undefined));
      },
      clocks: { getMany: () => Promise.resolve([]) },
      saveMany: () => Promise.resolve([]),
    };
    const consumer = await startSubscriptionOutcomes({
      events,
      subs,
      intents: { get: () => Promise.resolve(undefined) },
      dispatcher: { addMany: () => Promise.resolve() },
      logger: createLogger({ level: 'silent' }),
      clock: { now: () => Date.now() },
      dunning: { scheduleMs: [86_400_000], whenExhausted: 'past_due' },
      consumer: 'c1',
      blockMs: 100,
      claimIdleMs: 60_000,
    } as unknown as OutcomeConsumerDeps);
    const pendingIds = async () => {
      const pending = (await redis.xpending(
        `${prefix}:events`,
        SUBSCRIPTIONS_GROUP,
        '-',
        '+',
        10,
      )) as [string][];
      const ids = new Set(pending.map(([id]) => id));
      const entries = await redis.xrange(`${prefix}:events`, '-', '+');
      return entries.filter(([id]) => ids.has(id)).map(([, f]) => fieldsOf(f).id);
    };
    try {
      await until(() => asked.some((ids) => ids.length === 1 && ids[0] === 'innocent'), {
        what: 'innocent read alone',
      });
      await until(async () => (await pendingIds()).length === 1, { what: 'innocent acked' });
    } finally {
      await consumer.stop();
    }
    // Read together first, then each alone; only poison's outcome is left for XAUTOCLAIM.
    expect(asked[0]).toEqual(['poison', 'innocent']);
    expect(await pendingIds()).toEqual(['evt_sub_poison_20250101_1_failed']);
  });
});
