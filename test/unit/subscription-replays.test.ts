/**
 * Outcomes delivered again (a stream entry applied and stored, then not acknowledged, and claimed
 * again 30 s later) change nothing, also once the charge is gone from the record: written off,
 * paid, or its period canceled by dunning. And `subscription.renewed` reports what was charged.
 */
import { describe, expect, it } from 'vitest';
import type { IntentKey } from '../../src/kernel/ids.ts';
import { amountMinor } from '../../src/kernel/money.ts';
import { claimBilling, commitBilling, planBilling } from '../../src/subscriptions/billing.ts';
import { changeSubscription } from '../../src/subscriptions/changes.ts';
import { decideOutcome, type PaymentOutcome } from '../../src/subscriptions/outcome-rules.ts';
import type { DunningPolicy } from '../../src/subscriptions/outcomes.ts';
import { periodKey } from '../../src/subscriptions/periods.ts';
import {
  createSubscription,
  isBillable,
  type Decision,
  type Subscription,
} from '../../src/subscriptions/record.ts';

const DAY = 86_400_000;
const t0 = Date.parse('2025-01-31T08:00:00Z');
const NOTHING = { events: [], retries: [] };

function billed(amount = 150_000): { sub: Subscription; key: IntentKey } {
  const s = createSubscription(
    {
      id: 'rp',
      customerEmail: 'ada@example.com',
      cardTokenSealed: 'v1.sealed',
      amount: amountMinor(amount),
      currency: 'NGN',
      schedule: {
        anchor: '2025-01-31T09:00:00+01:00',
        timezone: 'Africa/Lagos',
        interval: 'month',
        intervalCount: 1,
      },
      metadata: {},
    },
    t0 - 1_000,
  );
  const plan = planBilling(s, t0, { catchUpMax: 12 });
  if (plan.kind !== 'bill') throw new Error('expected a bill plan');
  const sub = commitBilling(claimBilling(s, plan, { token: 't', now: t0, leaseMs: 1 }), 't', 0, t0);
  if (!sub) throw new Error('commit refused');
  return { sub, key: periodKey(sub, 0) };
}

const outcome = (
  kind: 'payment.failed' | 'payment.succeeded',
  key: IntentKey,
  attempt: number,
  extra: Partial<PaymentOutcome> = {},
): PaymentOutcome => ({
  kind,
  subscriptionId: 'rp',
  key,
  attempt,
  ...(kind === 'payment.failed' ? { reason: 'declined' } : {}),
  ...extra,
});

function apply(sub: Subscription, o: PaymentOutcome, now: number, policy: DunningPolicy) {
  const d = decideOutcome(sub, o, now, policy, undefined);
  if (!d) throw new Error('not a period of the subscription');
  return d;
}

function next(d: Decision): Subscription {
  if (!d.next) throw new Error('no change');
  return d.next;
}

describe('a failure delivered again after its period was written off', () => {
  for (const whenExhausted of ['past_due', 'cancel'] as const) {
    it(`changes nothing (DUNNING_EXHAUSTED=${whenExhausted})`, () => {
      const policy: DunningPolicy = { scheduleMs: [DAY], whenExhausted };
      const { sub, key } = billed();
      const first = next(apply(sub, outcome('payment.failed', key, 1), t0 + 1_000, policy));
      const last = apply(first, outcome('payment.failed', key, 2), t0 + DAY + 5_000, policy);
      const done = next(last);
      expect(done).toMatchObject({
        status: whenExhausted === 'cancel' ? 'canceled' : 'past_due',
        dunning: [],
      });
      // The same entry, claimed again 30 s later: no dunning reopened, no event, no retry.
      for (const attempt of [2, 1])
        expect(
          apply(done, outcome('payment.failed', key, attempt), t0 + DAY + 35_000, policy),
        ).toEqual(NOTHING);
      if (whenExhausted === 'past_due') {
        expect(isBillable(done)).toBe(true);
        expect(done.settled).toEqual([{ key, period: 0, attempt: 2, outcome: 'written_off' }]);
      }
    });
  }

  it('a failure a person forced (written off under cancel too) changes nothing when replayed after the next period is paid', () => {
    const policy: DunningPolicy = { scheduleMs: [DAY], whenExhausted: 'cancel' };
    const { sub, key } = billed();
    const off = next(
      apply(sub, outcome('payment.failed', key, 1, { reason: 'operator_forced' }), t0, policy),
    );
    expect(off).toMatchObject({ status: 'past_due', delinquent: true, dunning: [] });
    const feb = planBilling(off, Date.parse('2025-02-28T08:00:00Z'), { catchUpMax: 12 });
    if (feb.kind !== 'bill') throw new Error('expected a bill plan');
    const now = Date.parse('2025-02-28T08:00:00Z');
    const billedFeb = commitBilling(
      claimBilling(off, feb, { token: 'f', now, leaseMs: 1 }),
      'f',
      0,
      now,
    )!;
    const paid = next(
      apply(billedFeb, outcome('payment.succeeded', periodKey(off, 1), 1), now + 1, policy),
    );
    expect(paid.status).toBe('active');
    expect(
      apply(
        paid,
        outcome('payment.failed', key, 1, { reason: 'operator_forced' }),
        now + 2,
        policy,
      ),
    ).toEqual(NOTHING);
  });
});

describe('outcomes delivered again after the period was paid', () => {
  const policy: DunningPolicy = { scheduleMs: [DAY, 3 * DAY], whenExhausted: 'cancel' };

  it('an earlier failure reopens no dunning; the success itself is not applied twice', () => {
    const { sub, key } = billed();
    const failed = next(apply(sub, outcome('payment.failed', key, 1), t0 + 1_000, policy));
    const renewed = apply(failed, outcome('payment.succeeded', key, 2), t0 + DAY, policy);
    const paid = next(renewed);
    expect(paid).toMatchObject({ status: 'active', dunning: [] });
    expect(renewed.events.map((e) => e.id)).toEqual(['evt_sub_rp_20250131_renewed']);
    expect(apply(paid, outcome('payment.failed', key, 1), t0 + DAY + 30_000, policy)).toEqual(
      NOTHING,
    );
    expect(apply(paid, outcome('payment.succeeded', key, 2), t0 + DAY + 30_000, policy)).toEqual(
      NOTHING,
    );
  });
});

describe('subscription.renewed', () => {
  it('reports the amount and currency charged, not the amount changed since', () => {
    const policy: DunningPolicy = { scheduleMs: [DAY], whenExhausted: 'cancel' };
    const { sub, key } = billed(150_000);
    const failed = next(apply(sub, outcome('payment.failed', key, 1), t0 + 1_000, policy));
    const changed = changeSubscription(failed, { amount: amountMinor(200_000) }, t0 + 2_000);
    if ('refused' in changed) throw new Error('change refused');
    const patched = next(changed);
    expect(patched.amount).toBe(200_000);
    // The retry charged the intent's amount, as its payment.succeeded says.
    const d = apply(
      patched,
      outcome('payment.succeeded', key, 2, { amount: 150_000, currency: 'NGN' }),
      t0 + DAY,
      policy,
    );
    expect(d.events).toEqual([
      expect.objectContaining({
        type: 'subscription.renewed',
        data: expect.objectContaining({ amount: 150_000, currency: 'NGN', attempt: 2 }),
      }),
    ]);
  });
});
