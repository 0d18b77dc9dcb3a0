/**
 * A refund reservation run twice by one request. ioredis resends a command whose reply a dropped
 * connection lost (autoResendUnfulfilledCommands, its default; on a cluster also after a failover),
 * so the reservation script can run a second time for the same call. That run must answer as the
 * first did: before, it answered `retry` (refund n now existed) and the store reserved refund n+1,
 * so one partial refund request without a caller key queued two refunds. On real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { AmountMinor } from '../../src/kernel/money.ts';
import { RedisIntentStore } from '../../src/payments/store/intent-store.ts';
import { RESERVE_REFUND } from '../../src/payments/store/refund-lua.ts';
import { RedisRefundStore } from '../../src/payments/store/refund-store.ts';
import { createTestCharge } from '../support/intents.ts';
import { cleanupPrefix, createTestRedis, uniquePrefix } from '../support/redis.ts';
import { resendingOnce } from '../support/resend.ts';

let redis: Redis;
const prefix = uniquePrefix('refund-resend');

beforeAll(async () => {
  redis = await createTestRedis();
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

describe('a reservation run twice by one request', () => {
  it('reserves one refund and answers created, with or without a caller key', async () => {
    const intents = new RedisIntentStore(redis, prefix);
    // Loads the script, so the proxied EVALSHA finds it.
    await RESERVE_REFUND.load(redis);
    for (const callerKey of [undefined, 'rk-1']) {
      const charge = await createTestCharge(intents, `resend-${callerKey ?? 'none'}`);
      await intents.transition(charge, 'submitting', 2);
      expect((await intents.transition(charge, 'succeeded', 3)).ok).toBe(true);
      const refunds = new RedisRefundStore(resendingOnce(redis, RESERVE_REFUND), prefix, intents);
      const res = await refunds.reserve({
        chargeKey: charge,
        amount: 400 as AmountMinor,
        requestHash: 'h',
        requestedBy: 'test',
        now: 4,
        ...(callerKey ? { callerKey } : {}),
      });
      expect(res.status, callerKey).toBe('created');
      const all = await refunds.refundsOf(charge);
      expect(all.map((r) => [r.key, r.amount])).toEqual([[`rf1_${charge}`, 400]]);
    }
  });
});
