/**
 * The lean transition script (issue 18): the submit claim takes the outbound rate limit's token in
 * the same atomic step, and a transition given the caller's copy of the intent (`known`) returns
 * that copy with its changes applied instead of reading the hash back. On real Redis under a
 * prefix of its own; the rate window is a minute long so no assertion depends on timing.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeKeys } from '../../src/infra/redis/keys.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { Intent } from '../../src/kernel/payment.ts';
import type { TransitionOptions } from '../../src/kernel/ports.ts';
import type { IntentState } from '../../src/kernel/intent.ts';
import { RedisIntentStore } from '../../src/payments/store/intent-store.ts';
import { createTestCharge } from '../support/intents.ts';
import { cleanupPrefix, createTestRedis, uniquePrefix } from '../support/redis.ts';

let redis: Redis;
let store: RedisIntentStore;
const prefix = uniquePrefix('lean');
const WINDOW_MS = 60_000;

const charge = (name: string) => createTestCharge(store, name);

const claim = (key: string, now: number, rateLimited = true) =>
  store.transition(key, 'submitting', now, {
    expectAttempt: 1,
    patch: { leaseUntil: now + 1_000, sentAt: now },
    rateLimited,
  });

beforeAll(async () => {
  redis = await createTestRedis();
  store = new RedisIntentStore(redis, prefix, {
    gatewayRateLimit: { perWindow: 2, windowMs: WINDOW_MS },
  });
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

describe('the claim takes the rate limit token', () => {
  it('grants the window its tokens, then refuses without changing anything; other refusals take none', async () => {
    const counter = storeKeys(prefix).rateLimit();
    const [a, b, c] = [await charge('rl-a'), await charge('rl-b'), await charge('rl-c')];
    expect((await claim(a, 10)).ok).toBe(true);
    expect((await claim(b, 11)).ok).toBe(true);
    expect(await redis.get(counter)).toBe('2');

    const limited = await claim(c, 12);
    expect(limited).toMatchObject({ ok: false, why: 'rate_limited', state: 'queued', attempt: 1 });
    if (limited.ok || limited.why !== 'rate_limited') throw new Error('not limited');
    expect(limited.retryInMs).toBeGreaterThan(0);
    expect(limited.retryInMs).toBeLessThanOrEqual(WINDOW_MS);
    const untouched = await store.get(c);
    expect(untouched?.state).toBe('queued');
    expect(untouched?.leaseUntil).toBeUndefined();
    expect(await store.history(c)).toHaveLength(1);
    expect(await redis.zscore(storeKeys(prefix).leases(), c)).toBeNull();

    // A claim refused for its state, attempt or absence takes no token and says why.
    expect(await claim(a, 13)).toMatchObject({ ok: false, why: 'refused', state: 'submitting' });
    expect(await claim('api_rl-none', 13)).toEqual({ ok: false, why: 'missing' });
    expect(await redis.get(counter)).toBe('2');

    // A transition that is not a claim takes none either, and a new window grants again.
    expect((await claim(c, 14, false)).ok).toBe(true);
    expect(await redis.get(counter)).toBe('2');
    await redis.del(counter);
    const d = await charge('rl-d');
    expect((await claim(d, 15)).ok).toBe(true);
    expect(await redis.get(counter)).toBe('1');
    const ttl = await redis.pttl(counter);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(WINDOW_MS);
  });
});

describe('a transition given the caller copy returns what a read-back would', () => {
  /** Runs the transition with `known` and compares its intent with the hash as stored. */
  async function step(
    known: Intent,
    to: IntentState,
    now: number,
    opts: TransitionOptions = {},
  ): Promise<Intent> {
    const res = await store.transition(known.key, to, now, {
      expectAttempt: known.attempt,
      known,
      ...opts,
    });
    if (!res.ok) throw new Error(`${known.key} → ${to}: ${res.why}`);
    expect(res.intent).toEqual(await store.get(known.key));
    return res.intent;
  }

  it('through claim, outcomes, a resubmission and a new attempt', async () => {
    const key = await charge('copy');
    const claimed = await claim(key, 20);
    if (!claimed.ok) throw new Error('no claim');
    // The claim's reply is built from its one read and its writes: the hash as stored.
    expect(claimed.intent).toEqual(await store.get(key));
    const unknown = await step(claimed.intent, 'unknown', 21, {
      patch: { checks: 0, seenAtGateway: 21 },
      reconcileAt: 51,
      reason: 'timeout',
    });
    expect(unknown.leaseUntil).toBeUndefined();
    expect(await redis.zscore(storeKeys(prefix).leases(), key)).toBeNull();
    const requeued = await step(unknown, 'queued', 22, { unsentResubmit: true });
    expect(requeued).toMatchObject({ enqueues: 2, unsentResubmits: 1 });
    const again = await claim(key, 23, false);
    if (!again.ok) throw new Error('no second claim');
    const failed = await step(again.intent, 'failed', 24, {
      patch: {
        checks: 0,
        reason: 'declined',
        message: 'Insufficient funds',
        gatewayReference: 'g1',
      },
      reason: 'declined',
    });
    const next = await step(failed, 'queued', 25, {
      newAttempt: true,
      payee: { kind: 'charge', email: 'p@example.com', cardTokenSealed: 'sealed-2' },
    });
    expect(next).toMatchObject({ attempt: 2, reference: `${key}_2`, checks: 0 });
    expect(next.reason).toBeUndefined();
    const third = await store.transition(key, 'submitting', 26, {
      expectAttempt: 2,
      patch: { leaseUntil: 1_026, sentAt: 26 },
    });
    if (!third.ok) throw new Error('no third claim');
    await step(third.intent, 'succeeded', 27, {
      patch: {
        checks: 0,
        gatewayReference: 'g2',
        fee: 15 as AmountMinor,
        authorizationSealed: 'auth',
      },
    });
    expect((await store.history(key)).map((h) => h.to)).toEqual([
      'queued',
      'submitting',
      'unknown',
      'queued',
      'submitting',
      'failed',
      'queued',
      'submitting',
      'succeeded',
    ]);
  });

  it('maps every optional field of a claimed hash as a read does', async () => {
    const key = 'api_copy-payout' as IntentKey;
    const { intent: created } = await store.create(
      {
        key,
        type: 'payout',
        origin: 'subscription',
        amount: 2500 as AmountMinor,
        currency: 'NGN',
        payee: {
          kind: 'payout',
          accountNumber: '0123456789',
          bankCode: '058',
          bankName: 'GTBank',
          accountName: 'Ada',
          narration: 'n',
          paymentMode: 'bank',
        },
        subscriptionId: 'sub_1',
        meta: { order: '42' },
        requestHash: 'h1',
      },
      30,
    );
    expect(created).toEqual(await store.get(key));
    const claimed = await claim(key, 31, false);
    if (!claimed.ok) throw new Error('no claim');
    expect(claimed.intent).toEqual(await store.get(key));
    expect(claimed.intent).toMatchObject({ leaseUntil: 1_031, meta: { order: '42' } });
  });

  it('a lease counts only while submitting; a claim without one of its own starts now', async () => {
    const key = await charge('lease-field');
    const claimed = await claim(key, 40, false);
    if (!claimed.ok) throw new Error('no claim');
    const unknown = await step(claimed.intent, 'unknown', 41, { patch: { checks: 0 } });
    // Leaving submitting removes the lease entry; the hash keeps the field, which no read shows.
    expect(unknown.leaseUntil).toBeUndefined();
    expect(await redis.zscore(storeKeys(prefix).leases(), key)).toBeNull();
    const requeued = await step(unknown, 'queued', 42, { unsentResubmit: true });
    const bare = await store.transition(key, 'submitting', 43, {
      expectAttempt: requeued.attempt,
    });
    if (!bare.ok) throw new Error('no bare claim');
    expect(bare.intent.leaseUntil).toBeUndefined();
    expect(bare.intent).toEqual(await store.get(key));
    expect(await redis.zscore(storeKeys(prefix).leases(), key)).toBe('43');
  });
});
