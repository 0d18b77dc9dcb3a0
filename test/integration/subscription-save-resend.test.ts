/**
 * A subscription save run twice by one call (the Redis client resends a command whose reply a
 * dropped connection lost): the second run answers as the first did, with the version the call
 * wrote. Before, it answered a version conflict; the caller re-read the record its own call had
 * already changed and decided again: a resume then found nothing to do and never re-armed the
 * dunning retry of a failed renewal (the subscription stayed past_due with no retry). Real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RedisSubscriptionStore,
  SAVE_SUBSCRIPTION,
} from '../../src/subscriptions/store/subscription-store.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { resendingOnce } from '../support/resend.ts';
import { createMonthlySubscription } from '../support/subscriptions.ts';

let t: TestApp;

beforeAll(async () => {
  // No roles: nothing runs but the store.
  t = await startTestApp({ sandboxUrl: 'http://127.0.0.1:9', roles: [] });
});
afterAll(async () => {
  await t?.close();
});

describe('a subscription save run twice by one call', () => {
  it('answers the version it wrote, once, not a conflict', async () => {
    const created = await createMonthlySubscription(t.app, 'resend-sub', {
      card_token: 'tok_resend_sub_0123456789',
      amount: '10.00',
    });
    expect(created.status).toBe('created');
    const before = await t.app.subscriptions.get('resend-sub');
    expect(before).toBeDefined();
    await SAVE_SUBSCRIPTION.load(t.app.redis);
    const store = new RedisSubscriptionStore(
      resendingOnce(t.app.redis, SAVE_SUBSCRIPTION),
      t.prefix,
    );
    const paused = { ...before!.sub, status: 'paused' as const };
    const version = await store.save(paused, before!.version);
    expect(version).toBe(before!.version + 1);
    const after = await t.app.subscriptions.get('resend-sub');
    expect(after?.version).toBe(before!.version + 1);
    expect(after?.sub.status).toBe('paused');
  });
});
