/**
 * A new attempt may carry a new payee (a subscription's changed card, subscriptions/dunning.ts);
 * nothing else may change one: an attempt that may have reached the gateway keeps what it was
 * sent with. On real Redis under a prefix of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { AmountMinor } from '../../src/kernel/money.ts';
import type { ChargePayee } from '../../src/kernel/payment.ts';
import { RedisIntentStore } from '../../src/payments/store/intent-store.ts';
import { cleanupPrefix, createTestRedis, uniquePrefix } from '../support/redis.ts';

let redis: Redis;
let store: RedisIntentStore;
const prefix = uniquePrefix('payee');
const card = (sealed: string): ChargePayee => ({
  kind: 'charge',
  email: 'p@example.com',
  cardTokenSealed: sealed,
});

beforeAll(async () => {
  redis = await createTestRedis();
  store = new RedisIntentStore(redis, prefix);
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  await redis.quit();
});

describe('payee on a new attempt', () => {
  it('is written with the new attempt, and refused without one', async () => {
    const key = 'sub_s1_20260101' as IntentKey;
    await store.create(
      {
        key,
        type: 'charge',
        origin: 'subscription',
        amount: 1000 as AmountMinor,
        currency: 'NGN',
        payee: card('old-card'),
        subscriptionId: 's1',
      },
      1,
    );
    await store.transition(key, 'submitting', 2);
    await expect(
      store.transition(key, 'failed', 3, { payee: card('new-card'), reason: 'declined' }),
    ).rejects.toThrow(RangeError);
    await store.transition(key, 'failed', 3, { patch: { reason: 'declined' } });
    expect((await store.get(key))?.payee).toEqual(card('old-card'));

    const res = await store.transition(key, 'queued', 4, {
      newAttempt: true,
      expectAttempt: 1,
      payee: card('new-card'),
    });
    expect(res.ok).toBe(true);
    const intent = await store.get(key);
    expect(intent).toMatchObject({ attempt: 2, reference: `${key}_2`, payee: card('new-card') });
  });
});

describe('a new attempt (a new reference for the same money)', () => {
  const draft = (key: IntentKey) => ({
    key,
    type: 'charge' as const,
    origin: 'subscription' as const,
    amount: 1000 as AmountMinor,
    currency: 'NGN' as const,
    payee: card('card'),
    subscriptionId: 's2',
  });

  it('is opened only on a failed attempt: from unknown or submitting the store refuses it', async () => {
    const key = 'sub_s2_20260101' as IntentKey;
    await store.create(draft(key), 1);
    await store.transition(key, 'submitting', 2);
    // Both are moves the table has into `queued` (a proven-unsent resubmission, a release), and
    // even a caller naming them in onlyFrom gets no new reference: the first may have landed.
    for (const onlyFrom of [undefined, ['submitting', 'unknown', 'failed'] as const]) {
      const res = await store.transition(key, 'queued', 3, {
        newAttempt: true,
        expectAttempt: 1,
        ...(onlyFrom ? { onlyFrom } : {}),
      });
      expect(res).toMatchObject({ ok: false, why: 'refused' });
    }
    await store.transition(key, 'unknown', 4);
    const fromUnknown = await store.transition(key, 'queued', 5, {
      newAttempt: true,
      expectAttempt: 1,
    });
    expect(fromUnknown).toMatchObject({ ok: false, why: 'refused' });
    expect(await store.get(key)).toMatchObject({
      state: 'unknown',
      attempt: 1,
      reference: `${key}_1`,
    });

    await store.transition(key, 'failed', 6, { patch: { reason: 'declined' } });
    const retried = await store.transition(key, 'queued', 7, {
      newAttempt: true,
      expectAttempt: 1,
    });
    expect(retried.ok).toBe(true);
    expect(await store.get(key)).toMatchObject({ attempt: 2, reference: `${key}_2` });
  });

  it('goes into queued only', async () => {
    const key = 'sub_s2_20260201' as IntentKey;
    await store.create(draft(key), 1);
    await store.transition(key, 'submitting', 2);
    await store.transition(key, 'failed', 3, { patch: { reason: 'declined' } });
    await expect(
      store.transition(key, 'submitting', 4, { newAttempt: true, expectAttempt: 1 }),
    ).rejects.toThrow(RangeError);
    expect(await store.get(key)).toMatchObject({ state: 'failed', attempt: 1 });
  });
});
