/**
 * An intent transition run twice by one call. ioredis resends a command whose reply a dropped
 * connection lost (autoResendUnfulfilledCommands, its default; the cluster client after a
 * failover), so TRANSITION_INTENT can run a second time for one call and the caller sees only the
 * second reply. That run must answer as the first did and write nothing again. Before, a worker's
 * claim answered `refused` (the intent was already `submitting`, by this very claim): the worker
 * dropped the job and the payment waited out its own lease before it was sent, and a refund's
 * claim lapsed into `needs_review` although nothing had been sent. On real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import { TRANSITION_INTENT } from '../../src/payments/store/intent-lua.ts';
import { RedisIntentStore } from '../../src/payments/store/intent-store.ts';
import { createTestCharge } from '../support/intents.ts';
import { cleanupPrefix, createTestRedis, uniquePrefix } from '../support/redis.ts';
import { resendingOnce } from '../support/resend.ts';

let redis: Redis;
const prefix = uniquePrefix('transition-resend');
const k = storeKeys(prefix);
const limit = { gatewayRateLimit: { perWindow: 100, windowMs: 60_000 } };

beforeAll(async () => {
  redis = await createTestRedis();
  // Loads the script, so the proxied EVALSHA finds it.
  await TRANSITION_INTENT.load(redis);
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

/** The store whose first transition call runs twice. */
const resending = () =>
  new RedisIntentStore(resendingOnce(redis, TRANSITION_INTENT), prefix, limit);

describe('a transition run twice by one call', () => {
  it('answers a claim as the first run did: ok from queued, one token, one history line', async () => {
    const plain = new RedisIntentStore(redis, prefix, limit);
    const key = await createTestCharge(plain, 'claim');
    await redis.del(k.rateLimit());
    const known = await plain.get(key);
    const res = await resending().transition(key, 'submitting', 10, {
      expectAttempt: 1,
      patch: { leaseUntil: 1_000, sentAt: 10 },
      rateLimited: true,
      ...(known ? { known } : {}),
    });
    expect(res.ok && res.from).toBe('queued');
    expect(res.ok && res.intent.state).toBe('submitting');
    expect(await redis.get(k.rateLimit())).toBe('1');
    const history = await plain.history(key);
    expect(history.map((h) => [h.from, h.to])).toEqual([
      [null, 'queued'],
      ['queued', 'submitting'],
    ]);
    expect(await redis.zscore(k.leases(), key)).toBe('1000');
  });

  it('publishes an outcome once, and answers the read-back of what the first run wrote', async () => {
    const plain = new RedisIntentStore(redis, prefix, limit);
    const key = await createTestCharge(plain, 'outcome');
    await plain.transition(key, 'submitting', 10, { patch: { leaseUntil: 2_000 } });
    const eventsBefore = await redis.xlen(k.events());
    // No `known` copy: the caller asks for the intent back.
    const res = await resending().transition(key, 'succeeded', 20, {
      expectAttempt: 1,
      claimLease: 2_000,
      patch: { gatewayReference: 'gw-1' },
    });
    expect(res.ok && res.from).toBe('submitting');
    expect(res.ok && [res.intent.state, res.intent.gatewayReference, res.intent.updatedAt]).toEqual(
      ['succeeded', 'gw-1', 20],
    );
    expect((await redis.xlen(k.events())) - eventsBefore).toBe(1);
    const history = await plain.history(key);
    expect(history.map((h) => h.to)).toEqual(['queued', 'submitting', 'succeeded']);
    expect(await redis.zscore(k.leases(), key)).toBeNull();
  });

  it('still refuses another call: only the call that wrote is answered ok again', async () => {
    const plain = new RedisIntentStore(redis, prefix, limit);
    const key = await createTestCharge(plain, 'other');
    const first = await plain.transition(key, 'submitting', 10, { expectAttempt: 1 });
    expect(first.ok).toBe(true);
    const second = await plain.transition(key, 'submitting', 11, {
      expectAttempt: 1,
      onlyFrom: ['queued'],
    });
    expect(second).toMatchObject({ ok: false, why: 'refused', state: 'submitting' });
  });
});
