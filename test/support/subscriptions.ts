/** Subscriptions for tests that need one to act on: created through the subscription service. */
import type { App } from '../../src/app/composition.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import type { Subscription } from '../../src/subscriptions/record.ts';
import {
  createSubscriptionFromBody,
  subscriptionServiceDeps,
} from '../../src/subscriptions/service.ts';

/**
 * Creates subscription `id`: NGN 49.99 a month, anchored 2030-01-31 09:00 Lagos (so nothing is
 * due while a test runs), with `over` replacing fields of the body.
 */
export function createMonthlySubscription(
  app: App,
  id: string,
  over: Record<string, unknown> = {},
): ReturnType<typeof createSubscriptionFromBody> {
  return createSubscriptionFromBody(subscriptionServiceDeps(app), {
    id,
    customer_email: 'sub@example.com',
    card_token: 'tok_console_sub_0123456789',
    amount: '49.99',
    currency: 'NGN',
    interval: 'month',
    interval_count: 1,
    anchor: '2030-01-31T09:00:00+01:00',
    timezone: 'Africa/Lagos',
    ...over,
  });
}

/**
 * The dunning entry of `sub`'s next period (intent `key`): attempt 1 declined two days before
 * `now`, retry step 0 due an hour before `now`.
 */
export function firstRetryDueBefore(
  sub: Subscription,
  key: IntentKey,
  now: number,
): Subscription['dunning'][number] {
  return {
    key,
    period: sub.nextPeriod,
    attempt: 1,
    step: 0,
    failedAt: now - 2 * 86_400_000,
    dueAt: now - 3_600_000,
    reason: 'declined',
  };
}
