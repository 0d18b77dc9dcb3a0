/**
 * Rule 9 (record.ts, holds.ts): an unresolved renewal holds billing. Pure rules, no Redis.
 */
import { describe, expect, it } from 'vitest';
import { amountMinor } from '../../src/kernel/money.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import {
  cancelSubscription,
  pauseSubscription,
  resumeSubscription,
} from '../../src/subscriptions/actions.ts';
import { claimBilling, commitBilling, planBilling } from '../../src/subscriptions/billing.ts';
import {
  checkOpenCharges,
  onChargeUnresolved,
  type ChargeSnapshot,
} from '../../src/subscriptions/holds.ts';
import {
  onChargeFailed,
  onChargeSucceeded,
  type DunningPolicy,
} from '../../src/subscriptions/outcomes.ts';
import {
  billingHold,
  createSubscription,
  dueScore,
  isBillable,
  nextChargeAt,
  subscriptionSchema,
  type Decision,
  type HoldingState,
  type Subscription,
} from '../../src/subscriptions/record.ts';
import { toSubscriptionView } from '../../src/subscriptions/service.ts';

const DAY = 86_400_000;
const ms = (iso: string) => Date.parse(iso);
const T0 = ms('2025-02-01T08:00:00Z');
const POLICY: DunningPolicy = { scheduleMs: [DAY, 3 * DAY], whenExhausted: 'cancel' };
const K0 = 'sub_d1_20250201' as IntentKey;
const K1 = 'sub_d1_20250202' as IntentKey;
const K2 = 'sub_d1_20250203' as IntentKey;

function daily(): Subscription {
  return createSubscription(
    {
      id: 'd1',
      customerEmail: 'ada@example.com',
      cardTokenSealed: 'v1.sealed',
      amount: amountMinor(150_000),
      currency: 'NGN',
      schedule: {
        anchor: '2025-02-01T08:00:00Z',
        timezone: 'UTC',
        interval: 'day',
        intervalCount: 1,
      },
      metadata: {},
    },
    T0 - 1_000,
  );
}

function next(d: Decision | { refused: string }): Subscription {
  if ('refused' in d) throw new Error(`refused: ${d.refused}`);
  if (!d.next) throw new Error('no change');
  return d.next;
}

/** Bills what is due at `now`, as a tick would (claim, then commit). */
function bill(s: Subscription, now: number, catchUpMax = 12) {
  const plan = planBilling(s, now, { catchUpMax });
  if (plan.kind !== 'bill') throw new Error(`nothing to bill: ${plan.kind}`);
  const claimed = claimBilling(s, plan, { token: 't', now, leaseMs: 60_000 });
  return { sub: commitBilling(claimed, 't', plan.skipped, now)!, periods: plan.periods };
}

const period = (key: IntentKey) => [K0, K1, K2].indexOf(key);

function unresolved(s: Subscription, key: IntentKey, state: HoldingState, at: number, attempt = 1) {
  return onChargeUnresolved(s, { key, period: period(key), attempt, state, since: at, now: at });
}
const succeed = (s: Subscription, key: IntentKey, attempt: number, now: number, auth?: boolean) =>
  onChargeSucceeded(s, {
    key,
    period: period(key),
    attempt,
    now,
    ...(auth !== undefined ? { hasAuthorization: auth } : {}),
  });
const fail = (s: Subscription, key: IntentKey, attempt: number, now: number) =>
  onChargeFailed(s, { key, period: period(key), attempt, now, reason: 'declined' }, POLICY);

describe('open charges', () => {
  it('a claimed period is an open charge until its outcome is applied', () => {
    const s = bill(daily(), T0).sub;
    expect(s.openCharges).toEqual([{ key: K0, period: 0 }]);
    // In flight (no hold): billing goes on.
    expect(isBillable(s)).toBe(true);
    expect(next(succeed(s, K0, 1, T0 + 1)).openCharges).toEqual([]);
    expect(next(fail(s, K0, 1, T0 + 1)).openCharges).toEqual([]);
  });

  it('a record stored before rule 9 reads with none', () => {
    const { openCharges: _none, ...old } = daily();
    expect(subscriptionSchema.parse(JSON.parse(JSON.stringify(old))).openCharges).toEqual([]);
  });
});

describe('an unresolved renewal holds billing', () => {
  it('no period is billed on top of it, however long it lasts', () => {
    const s = bill(daily(), T0).sub;
    const d = unresolved(s, K0, 'pending', T0 + 5_000);
    const held = next(d);
    expect(billingHold(held)).toMatchObject({
      key: K0,
      hold: { state: 'pending', attempt: 1, since: T0 + 5_000 },
    });
    expect(isBillable(held)).toBe(false);
    expect(dueScore(held)).toBeNull();
    expect(nextChargeAt(held)).toBeNull();
    expect(planBilling(held, T0 + 60 * DAY, { catchUpMax: 12 }).kind).toBe('idle');
    expect(d.events).toEqual([
      {
        id: 'evt_sub_d1_20250201_1_held_pending',
        type: 'subscription.billing_held',
        at: T0 + 5_000,
        data: {
          subscriptionId: 'd1',
          key: K0,
          reference: 'sub_d1_20250201_1',
          attempt: 1,
          period: 0,
          state: 'pending',
          awaiting: 'gateway',
          since: T0 + 5_000,
          status: 'active',
        },
      },
    ]);
    expect(toSubscriptionView(held)).toMatchObject({
      status: 'active',
      next_charge_at: null,
      billing_held: {
        key: K0,
        reference: 'sub_d1_20250201_1',
        state: 'pending',
        awaiting: 'gateway',
        since: new Date(T0 + 5_000).toISOString(),
      },
    });
  });

  it('reports each state of the hold once, keeping when it started', () => {
    let s = bill(daily(), T0).sub;
    const steps: [HoldingState, string][] = [
      ['requires_action', 'customer'],
      ['pending', 'gateway'],
      ['needs_review', 'operator'],
    ];
    steps.forEach(([state, awaiting], i) => {
      const d = unresolved(s, K0, state, T0 + (i + 1) * 1_000);
      expect(d.events[0]).toMatchObject({
        id: `evt_sub_d1_20250201_1_held_${state}`,
        data: { state, awaiting, since: T0 + 1_000 },
      });
      s = next(d);
    });
    // The same report again, or one about an older attempt, changes nothing.
    expect(unresolved(s, K0, 'needs_review', T0 + 9_000)).toEqual({ events: [], retries: [] });
    const retried = next(unresolved(s, K0, 'requires_action', T0 + 10_000, 2));
    expect(billingHold(retried)?.hold).toEqual({
      state: 'requires_action',
      attempt: 2,
      since: T0 + 10_000,
    });
    expect(unresolved(retried, K0, 'pending', T0 + 11_000, 1)).toEqual({ events: [], retries: [] });
  });

  it('success lifts it: billing_resumed, renewed, and the held periods are billed in order after', () => {
    const s = next(unresolved(bill(daily(), T0).sub, K0, 'requires_action', T0 + 1_000));
    const d = succeed(s, K0, 1, T0 + 2 * DAY + 10);
    const n = next(d);
    expect(n).toMatchObject({ status: 'active', openCharges: [], currentPeriod: { index: 0 } });
    expect(d.events.map((e) => [e.type, e.id])).toEqual([
      ['subscription.billing_resumed', 'evt_sub_d1_20250201_1_resumed'],
      ['subscription.renewed', 'evt_sub_d1_20250201_renewed'],
    ]);
    expect(d.events[0]?.data).toMatchObject({
      outcome: 'succeeded',
      heldState: 'requires_action',
      heldSince: T0 + 1_000,
      held: false,
    });
    // Two days held: both billed now, oldest first (catch-up rules as ever, capped).
    expect(bill(n, T0 + 2 * DAY + 20).periods).toEqual([1, 2]);
    expect(bill(n, T0 + 2 * DAY + 20, 1).periods).toEqual([2]);
  });

  it('failure lifts it and starts dunning, which holds billing on its own', () => {
    const s = next(unresolved(bill(daily(), T0).sub, K0, 'needs_review', T0 + 1_000));
    const d = fail(s, K0, 1, T0 + DAY);
    const n = next(d);
    expect(n).toMatchObject({ status: 'past_due', openCharges: [], dunning: [{ key: K0 }] });
    expect(d.events.map((e) => e.type)).toEqual([
      'subscription.billing_resumed',
      'subscription.past_due',
    ]);
    expect(d.events[0]?.data).toMatchObject({ outcome: 'failed', held: true });
    expect(d.retries).toHaveLength(1);
    expect(isBillable(n)).toBe(false);

    // The retry's attempt 2 waits for the customer: held by it too; its failure is retry 2.
    const retrying = next(unresolved(n, K0, 'requires_action', T0 + DAY + 100, 2));
    expect(billingHold(retrying)?.hold).toMatchObject({ attempt: 2, state: 'requires_action' });
    expect(nextChargeAt(retrying)).toBeNull();
    const again = fail(retrying, K0, 2, T0 + DAY + 200);
    expect(next(again)).toMatchObject({ openCharges: [], dunning: [{ attempt: 2, step: 1 }] });
    expect(again.events.map((e) => e.id)).toEqual([
      'evt_sub_d1_20250201_2_resumed',
      'evt_sub_d1_20250201_2_past_due',
    ]);
    // A failure of an older attempt than the one held leaves the hold.
    expect(fail(retrying, K0, 1, T0 + DAY + 300)).toMatchObject({ events: [] });
  });

  it('dunning exhausted while held cancels it, and nothing is held any more', () => {
    let s = next(fail(bill(daily(), T0).sub, K0, 1, T0));
    s = next(fail(s, K0, 2, T0 + DAY));
    s = next(unresolved(s, K0, 'requires_action', T0 + 3 * DAY, 3));
    const d = fail(s, K0, 3, T0 + 4 * DAY);
    expect(next(d)).toMatchObject({ status: 'canceled', openCharges: [], dunning: [] });
    expect(d.events.map((e) => e.type)).toEqual([
      'subscription.billing_resumed',
      'subscription.canceled',
    ]);
  });

  it('pause keeps the hold, resume does not lift it; cancel forgets it', () => {
    const s = next(unresolved(bill(daily(), T0).sub, K0, 'pending', T0 + 1_000));
    const paused = next(pauseSubscription(s, T0 + 2_000));
    expect(billingHold(paused)).toBeDefined();
    const resumed = next(resumeSubscription(paused, T0 + 3 * DAY));
    expect(resumed.status).toBe('active');
    expect(isBillable(resumed)).toBe(false);
    const canceled = next(cancelSubscription(s, T0 + 3_000));
    expect(canceled.openCharges).toEqual([]);
    expect(unresolved(canceled, K0, 'needs_review', T0 + 4_000)).toEqual({
      events: [],
      retries: [],
    });
  });

  it('records that a reusable authorization exists, never the authorization', () => {
    const s = bill(daily(), T0).sub;
    const n = next(succeed(s, K0, 1, T0 + 1_000, true));
    expect(n.reusableAuthorization).toEqual({ key: K0, attempt: 1, at: T0 + 1_000 });
    expect(toSubscriptionView(n).reusable_authorization).toEqual({
      key: K0,
      recorded_at: new Date(T0 + 1_000).toISOString(),
    });
    expect(next(succeed(s, K0, 1, T0 + 1_000, false)).reusableAuthorization).toBeUndefined();
  });
});

describe('the tick checks open charges before billing on top of them', () => {
  // Three days billed in one catch-up, none of their outcomes applied yet.
  const three = () => bill(daily(), T0 + 2 * DAY + 10).sub;
  const snap = (entries: [IntentKey, ChargeSnapshot | undefined][]) => new Map(entries);
  const at = (state: ChargeSnapshot['state'], attempt = 1): ChargeSnapshot => ({
    state,
    attempt,
    updatedAt: T0 + 3 * DAY,
  });
  const now = T0 + 3 * DAY + 10;

  it('holds on every unresolved one (unknown publishes no event: the tick reports it)', () => {
    const check = checkOpenCharges(
      three(),
      snap([
        [K0, at('succeeded')],
        [K1, at('unknown')],
        [K2, at('requires_action')],
      ]),
      now,
    );
    if (check.kind !== 'hold') throw new Error(check.kind);
    expect(check.decision.next.openCharges).toEqual([
      { key: K1, period: 1, hold: { state: 'unknown', attempt: 1, since: T0 + 3 * DAY } },
      { key: K2, period: 2, hold: { state: 'requires_action', attempt: 1, since: T0 + 3 * DAY } },
    ]);
    expect(check.decision.events.map((e) => e.id)).toEqual([
      'evt_sub_d1_20250202_1_held_unknown',
      'evt_sub_d1_20250203_1_held_requires_action',
    ]);
    expect(isBillable(check.decision.next)).toBe(false);
  });

  it('waits for a failure the consumer has not applied yet (dunning is about to hold billing)', () => {
    expect(
      checkOpenCharges(
        three(),
        snap([
          [K0, at('failed')],
          [K1, at('queued')],
          [K2, at('succeeded')],
        ]),
        now,
      ),
    ).toEqual({ kind: 'await', key: K0 });
  });

  it('bills on top of charges paid, in flight or never created, forgetting the paid and missing ones', () => {
    const check = checkOpenCharges(
      three(),
      snap([
        [K0, at('succeeded')],
        [K1, at('submitting')],
        [K2, undefined],
      ]),
      now,
    );
    expect(check).toMatchObject({ kind: 'clear', sub: { openCharges: [{ key: K1, period: 1 }] } });
  });
});
