import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  duePeriods,
  periodIndexAt,
  periodStart,
  type Schedule,
} from '../../src/subscriptions/calendar.ts';
import type { IntentKey } from '../../src/kernel/ids.ts';
import { amountMinor } from '../../src/kernel/money.ts';
import {
  cancelSubscription,
  isRefusal,
  pauseSubscription,
  resumeSubscription,
} from '../../src/subscriptions/actions.ts';
import { claimBilling, commitBilling, planBilling } from '../../src/subscriptions/billing.ts';
import {
  onChargeFailed,
  onChargeSucceeded,
  type DunningPolicy,
} from '../../src/subscriptions/outcomes.ts';
import { periodIndexOfKey, periodKey } from '../../src/subscriptions/periods.ts';
import {
  createSubscription,
  dueScore,
  isBillable,
  nextChargeAt,
  type Decision,
  type Subscription,
} from '../../src/subscriptions/record.ts';

const DAY = 86_400_000;
const POLICY: DunningPolicy = {
  scheduleMs: [1 * DAY, 3 * DAY, 5 * DAY, 7 * DAY],
  whenExhausted: 'cancel',
};
const ms = (iso: string) => Date.parse(iso);

function sub(schedule: Partial<Schedule> = {}, now = ms('2025-01-01T00:00:00Z')): Subscription {
  return createSubscription(
    {
      id: 'sub1',
      customerEmail: 'ada@example.com',
      cardTokenSealed: 'v1.sealed',
      amount: amountMinor(150_000),
      currency: 'NGN',
      schedule: {
        anchor: '2025-01-31T09:00:00+01:00',
        timezone: 'Africa/Lagos',
        interval: 'month',
        intervalCount: 1,
        ...schedule,
      },
      metadata: { plan: 'gold' },
    },
    now,
  );
}

function next(d: Decision | { refused: string }): Subscription {
  if ('refused' in d) throw new Error(`refused: ${d.refused}`);
  if (!d.next) throw new Error('no change');
  return d.next;
}

/** Bills whatever is due at `now` as a tick would: claim, then commit. */
function bill(s: Subscription, now: number, catchUpMax = 12) {
  const plan = planBilling(s, now, { catchUpMax });
  if (plan.kind !== 'bill') return { sub: s, plan, keys: [] as IntentKey[] };
  const claimed = claimBilling(s, plan, { token: 't', now, leaseMs: 60_000 });
  const committed = commitBilling(claimed, 't', plan.skipped, now);
  if (!committed) throw new Error('commit refused');
  return { sub: committed, plan, keys: plan.periods.map((n) => periodKey(s, n)) };
}

function fail(s: Subscription, key: IntentKey, attempt: number, now: number, policy = POLICY) {
  const period = periodIndexOfKey(s, key);
  if (period === undefined) throw new Error(`not a period key: ${key}`);
  return onChargeFailed(s, { key, period, attempt, now, reason: 'declined' }, policy);
}

function succeed(s: Subscription, key: IntentKey, attempt: number, now: number) {
  const period = periodIndexOfKey(s, key);
  if (period === undefined) throw new Error(`not a period key: ${key}`);
  return onChargeSucceeded(s, { key, period, attempt, now });
}

describe('creating a subscription', () => {
  it('bills period 0 at a future anchor', () => {
    const s = sub();
    expect(s).toMatchObject({ status: 'active', nextPeriod: 0, dunning: [], delinquent: false });
    expect(s.nextPeriodStart).toBe(ms('2025-01-31T08:00:00Z'));
    expect(dueScore(s)).toBe(s.nextPeriodStart);
    expect(nextChargeAt(s)).toBe(s.nextPeriodStart);
  });

  it('bills the period containing the creation instant when the anchor is past, never earlier ones', () => {
    const s = sub({ anchor: '2024-06-15T10:00:00Z', timezone: 'UTC' }, ms('2025-03-20T00:00:00Z'));
    expect(s.nextPeriod).toBe(9); // 2025-03-15
    expect(periodKey(s, s.nextPeriod)).toBe('sub_sub1_20250315');
    expect(planBilling(s, ms('2025-03-20T00:00:00Z'), { catchUpMax: 12 })).toMatchObject({
      kind: 'bill',
      periods: [9],
      skipped: 0,
    });
  });
});

describe('billing periods', () => {
  it('waits until the period starts, then bills it once', () => {
    const s = sub();
    expect(planBilling(s, ms('2025-01-31T07:59:59Z'), { catchUpMax: 12 }).kind).toBe('wait');
    const first = bill(s, ms('2025-01-31T08:00:00Z'));
    expect(first.keys).toEqual(['sub_sub1_20250131']);
    expect(first.sub.nextPeriod).toBe(1);
    // Same instant again: nothing more is due.
    expect(planBilling(first.sub, ms('2025-01-31T08:00:00Z'), { catchUpMax: 12 }).kind).toBe(
      'wait',
    );
    expect(first.sub.nextPeriodStart).toBe(ms('2025-02-28T08:00:00Z'));
  });

  it('clamps to month ends without sticking (Jan 31, Feb 28, Mar 31, Apr 30)', () => {
    let s = sub();
    const keys: string[] = [];
    for (const at of ['2025-01-31', '2025-02-28', '2025-03-31', '2025-04-30']) {
      const r = bill(s, ms(`${at}T12:00:00Z`));
      keys.push(...r.keys);
      s = r.sub;
    }
    expect(keys).toEqual([
      'sub_sub1_20250131',
      'sub_sub1_20250228',
      'sub_sub1_20250331',
      'sub_sub1_20250430',
    ]);
  });

  it('catches up every missed period once, in order', () => {
    const s = sub({ anchor: '2025-01-01T09:00:00Z', timezone: 'UTC', interval: 'day' });
    const r = bill(s, ms('2025-01-06T10:00:00Z'));
    expect(r.keys).toEqual([
      'sub_sub1_20250101',
      'sub_sub1_20250102',
      'sub_sub1_20250103',
      'sub_sub1_20250104',
      'sub_sub1_20250105',
      'sub_sub1_20250106',
    ]);
    expect(r.sub.nextPeriod).toBe(6);
    expect(r.sub.skippedPeriods).toBe(0);
  });

  it('a calendar day the zone skipped bills nothing: Apia, daily, Dec 29 then Dec 31 2011', () => {
    // Samoa went from 2011-12-29 to 2011-12-31: the period scheduled on Dec 30 is empty (calendar
    // rule 6). Billing it would charge the customer twice for one day (keys ..1230 and ..1231).
    const s = sub(
      { anchor: '2011-12-28T09:00:00-10:00', timezone: 'Pacific/Apia', interval: 'day' },
      ms('2011-12-27T00:00:00Z'),
    );
    // Dec 31 09:00 in Apia (UTC+14 from then on) is Dec 30 19:00Z.
    const r = bill(s, ms('2011-12-30T20:00:00Z'));
    expect(r.keys).toEqual(['sub_sub1_20111228', 'sub_sub1_20111229', 'sub_sub1_20111231']);
    expect(r.sub).toMatchObject({ nextPeriod: 4, skippedPeriods: 0 });
  });

  it('bills only the newest CATCH_UP_MAX_PERIODS missed periods and counts the rest as skipped', () => {
    const s = sub({ anchor: '2025-01-01T09:00:00Z', timezone: 'UTC', interval: 'day' });
    const r = bill(s, ms('2025-01-10T10:00:00Z'), 3);
    expect(r.keys).toEqual(['sub_sub1_20250108', 'sub_sub1_20250109', 'sub_sub1_20250110']);
    expect(r.sub).toMatchObject({ nextPeriod: 10, skippedPeriods: 7 });
  });

  it('a claim holds the subscription until it is committed or its lease expires', () => {
    const s = sub();
    const now = ms('2025-01-31T08:00:00Z');
    const plan = planBilling(s, now, { catchUpMax: 12 });
    if (plan.kind !== 'bill') throw new Error('expected a bill plan');
    const claimed = claimBilling(s, plan, { token: 'a', now, leaseMs: 60_000 });
    expect(dueScore(claimed)).toBe(now + 60_000);
    expect(planBilling(claimed, now + 1_000, { catchUpMax: 12 })).toEqual({
      kind: 'busy',
      until: now + 60_000,
    });
    // Someone else's token cannot commit it.
    expect(commitBilling(claimed, 'b', 0, now)).toBeUndefined();
    // The lease expired with the claimer gone: the same periods are due again.
    expect(planBilling(claimed, now + 60_000, { catchUpMax: 12 })).toMatchObject({
      kind: 'bill',
      periods: [0],
    });
    const committed = commitBilling(claimed, 'a', 0, now);
    expect(committed?.claim).toBeUndefined();
    expect(committed?.nextPeriod).toBe(1);
    expect(dueScore(committed!)).toBe(ms('2025-02-28T08:00:00Z'));
  });

  it('bills exactly what the calendar says is due, capped (property)', () => {
    const zones = [
      'Africa/Lagos',
      'America/New_York',
      'Europe/London',
      'Asia/Kolkata',
      'Pacific/Apia',
      'Australia/Lord_Howe',
    ];
    fc.assert(
      fc.property(
        fc.record({
          timezone: fc.constantFrom(...zones),
          interval: fc.constantFrom(
            'day' as const,
            'week' as const,
            'month' as const,
            'year' as const,
          ),
          intervalCount: fc.integer({ min: 1, max: 3 }),
          anchorMs: fc.integer({
            min: ms('2010-01-01T00:00:00Z'),
            max: ms('2012-01-01T00:00:00Z'),
          }),
          nextPeriod: fc.integer({ min: 0, max: 40 }),
          aheadMs: fc.integer({ min: 0, max: 400 * DAY }),
          cap: fc.integer({ min: 1, max: 15 }),
        }),
        ({ timezone, interval, intervalCount, anchorMs, nextPeriod, aheadMs, cap }) => {
          const schedule = {
            anchor: new Date(anchorMs).toISOString(),
            timezone,
            interval,
            intervalCount,
          };
          const base = sub(schedule, anchorMs - 1);
          const s = { ...base, nextPeriod, nextPeriodStart: periodStart(schedule, nextPeriod) };
          const now = s.nextPeriodStart - DAY + aheadMs;
          const plan = planBilling(s, now, { catchUpMax: cap });
          const last = periodIndexAt(schedule, now);
          if (last < nextPeriod) {
            expect(plan.kind).toBe('wait');
            return;
          }
          const from = Math.max(nextPeriod, last - cap + 1);
          expect(plan).toEqual({
            kind: 'bill',
            periods: duePeriods(schedule, { fromIndex: from, nowMs: now, max: cap }),
            skipped: from - nextPeriod,
            next: last + 1,
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('maps every period key back to its index, across DST and month ends', () => {
    const schedules: Partial<Schedule>[] = [
      { anchor: '2025-01-31T09:00:00+01:00', timezone: 'Africa/Lagos', interval: 'month' },
      { anchor: '2025-03-08T02:30:00-05:00', timezone: 'America/New_York', interval: 'day' },
      {
        anchor: '2025-01-06T00:30:00Z',
        timezone: 'Europe/London',
        interval: 'week',
        intervalCount: 2,
      },
      { anchor: '2024-02-29T23:59:00+05:30', timezone: 'Asia/Kolkata', interval: 'year' },
    ];
    for (const schedule of schedules) {
      const s = sub(schedule);
      // Billed periods (below nextPeriod) and ones not billed yet (found by the calendar).
      const billed = { ...s, nextPeriod: 20 };
      for (let n = 0; n < 40; n++) expect(periodIndexOfKey(billed, periodKey(s, n))).toBe(n);
    }
    const s = sub();
    expect(periodIndexOfKey(s, 'sub_sub1_20250201')).toBeUndefined();
    expect(periodIndexOfKey(s, 'sub_other_20250131')).toBeUndefined();
  });
});

describe('payment outcomes and dunning', () => {
  const t0 = ms('2025-01-31T08:00:00Z');
  const billed = () => bill(sub(), t0);

  it('success keeps it active, records the paid period and emits subscription.renewed', () => {
    const { sub: s, keys } = billed();
    const d = succeed(s, keys[0]!, 1, t0 + 5_000);
    expect(d.next).toMatchObject({
      status: 'active',
      currentPeriod: { index: 0, start: t0, end: ms('2025-02-28T08:00:00Z') },
    });
    expect(d.events).toEqual([
      expect.objectContaining({
        id: 'evt_sub_sub1_20250131_renewed',
        type: 'subscription.renewed',
        data: expect.objectContaining({ subscriptionId: 'sub1', key: keys[0], period: 0 }),
      }),
    ]);
  });

  it('failure makes it past_due, holds billing and schedules retry 1 a day later', () => {
    const { sub: s, keys } = billed();
    const d = fail(s, keys[0]!, 1, t0 + 1_000);
    const n = next(d);
    expect(n.status).toBe('past_due');
    expect(n.dunning).toEqual([
      expect.objectContaining({ key: keys[0], attempt: 1, step: 0, failedAt: t0 + 1_000 }),
    ]);
    expect(isBillable(n)).toBe(false);
    expect(dueScore(n)).toBeNull();
    expect(nextChargeAt(n)).toBe(t0 + 1_000 + DAY);
    expect(d.retries).toEqual([
      { subscriptionId: 'sub1', key: keys[0], step: 0, dueAt: t0 + 1_000 + DAY, resumes: 0 },
    ]);
    expect(d.events).toEqual([
      expect.objectContaining({
        id: 'evt_sub_sub1_20250131_1_past_due',
        type: 'subscription.past_due',
        data: expect.objectContaining({ retry: 1, retryAt: t0 + 1_000 + DAY, exhausted: false }),
      }),
    ]);
    // Next month comes and goes while the card is retried: nothing new is billed.
    expect(planBilling(n, ms('2025-03-01T00:00:00Z'), { catchUpMax: 12 }).kind).toBe('idle');
  });

  it('a retry is due at its nominal time, never sooner than its gap after the previous failure; a replayed failure changes nothing', () => {
    const { sub: s, keys } = billed();
    const key = keys[0]!;
    const first = next(fail(s, key, 1, t0));
    // Retry 1 failed 10 ms after its nominal time: retry 2 is its 2-day gap after that failure.
    const second = fail(first, key, 2, t0 + DAY + 10);
    expect(second.retries[0]).toMatchObject({ step: 1, dueAt: t0 + 3 * DAY + 10 });
    const replay = fail(next(second), key, 2, t0 + DAY + 20);
    expect(replay.next).toBeUndefined();
    expect(replay.events).toEqual([]);
    expect(replay.retries).toEqual([
      expect.objectContaining({ step: 1, dueAt: t0 + 3 * DAY + 10 }),
    ]);
  });

  it('a retry that succeeds returns it to active and the held periods become due', () => {
    const { sub: s, keys } = billed();
    const key = keys[0]!;
    let cur = next(fail(s, key, 1, t0));
    cur = next(fail(cur, key, 2, t0 + DAY));
    const ok = succeed(cur, key, 3, t0 + 3 * DAY);
    const n = next(ok);
    expect(n).toMatchObject({ status: 'active', dunning: [], currentPeriod: { index: 0 } });
    expect(ok.events[0]).toMatchObject({ data: { attempt: 3, status: 'active' } });
    // Held through March 1st: February's period is billed now, once.
    const r = bill(n, ms('2025-03-01T00:00:00Z'));
    expect(r.keys).toEqual(['sub_sub1_20250228']);
  });

  it('exhausted retries cancel it, with subscription.canceled', () => {
    const { sub: s, keys } = billed();
    const key = keys[0]!;
    let cur = s;
    for (let attempt = 1; attempt <= 4; attempt++) cur = next(fail(cur, key, attempt, t0));
    const last = fail(cur, key, 5, t0 + 7 * DAY);
    const n = next(last);
    expect(n).toMatchObject({ status: 'canceled', cancelReason: 'dunning_exhausted', dunning: [] });
    expect(last.retries).toEqual([]);
    expect(last.events).toEqual([
      expect.objectContaining({
        id: 'evt_sub_sub1_canceled',
        type: 'subscription.canceled',
        data: expect.objectContaining({ reason: 'dunning_exhausted', key, failure: 'declined' }),
      }),
    ]);
    expect(dueScore(n)).toBeNull();
  });

  it('exhausted retries with DUNNING_EXHAUSTED=past_due write the period off and keep billing', () => {
    const policy: DunningPolicy = { scheduleMs: [DAY], whenExhausted: 'past_due' };
    const { sub: s, keys } = billed();
    const key = keys[0]!;
    const cur = next(fail(s, key, 1, t0, policy));
    const last = fail(cur, key, 2, t0 + DAY, policy);
    const n = next(last);
    expect(n).toMatchObject({ status: 'past_due', dunning: [], delinquent: true });
    expect(last.events[0]).toMatchObject({
      type: 'subscription.past_due',
      data: { exhausted: true },
    });
    expect(isBillable(n)).toBe(true);
    const feb = bill(n, ms('2025-02-28T08:00:00Z'));
    expect(feb.keys).toEqual(['sub_sub1_20250228']);
    expect(next(succeed(feb.sub, feb.keys[0]!, 1, ms('2025-02-28T08:00:01Z'))).status).toBe(
      'active',
    );
  });

  it('a later period paid while an earlier one is in dunning leaves it past_due', () => {
    const s = sub({ anchor: '2025-01-01T09:00:00Z', timezone: 'UTC', interval: 'day' });
    const r = bill(s, ms('2025-01-03T10:00:00Z'));
    let cur = next(fail(r.sub, r.keys[0]!, 1, ms('2025-01-03T10:00:01Z')));
    cur = next(succeed(cur, r.keys[2]!, 1, ms('2025-01-03T10:00:02Z')));
    cur = next(succeed(cur, r.keys[1]!, 1, ms('2025-01-03T10:00:03Z')));
    expect(cur).toMatchObject({ status: 'past_due', currentPeriod: { index: 2 } });
    cur = next(succeed(cur, r.keys[0]!, 2, ms('2025-01-04T10:00:00Z')));
    expect(cur).toMatchObject({ status: 'active', currentPeriod: { index: 2 }, dunning: [] });
  });
});

describe('pause, resume and cancel', () => {
  const t0 = ms('2025-01-31T08:00:00Z');

  it('pause stops billing; resume bills the current period and not the paused ones', () => {
    const s = bill(sub(), t0).sub;
    const paused = next(pauseSubscription(s, ms('2025-02-10T00:00:00Z')));
    expect(paused.status).toBe('paused');
    expect(dueScore(paused)).toBeNull();
    expect(nextChargeAt(paused)).toBeNull();
    expect(planBilling(paused, ms('2025-03-05T00:00:00Z'), { catchUpMax: 12 }).kind).toBe('idle');
    expect(pauseSubscription(paused, ms('2025-02-11T00:00:00Z'))).toEqual({
      events: [],
      retries: [],
    });

    const resumedAt = ms('2025-04-10T00:00:00Z');
    const resumed = next(resumeSubscription(paused, resumedAt));
    expect(resumed.status).toBe('active');
    // February and March passed while paused: not billed. April (started Mar 31) is billed now.
    expect(bill(resumed, resumedAt).keys).toEqual(['sub_sub1_20250331']);
  });

  it('resuming inside the period already paid bills nothing until the next one', () => {
    const s = bill(sub(), t0).sub;
    const paused = next(pauseSubscription(s, ms('2025-02-01T00:00:00Z')));
    const resumed = next(resumeSubscription(paused, ms('2025-02-10T00:00:00Z')));
    expect(resumed.nextPeriod).toBe(1);
    expect(planBilling(resumed, ms('2025-02-10T00:00:00Z'), { catchUpMax: 12 }).kind).toBe('wait');
    expect(resumed.nextPeriodStart).toBe(periodStart(s.schedule, 1));
  });

  it('pause during dunning stops retries; resume continues them under fresh job ids', () => {
    const r = bill(sub(), t0);
    const key = r.keys[0]!;
    const dunning = next(fail(r.sub, key, 1, t0));
    const paused = next(pauseSubscription(dunning, t0 + 1_000));
    expect(paused.dunning).toHaveLength(1);
    // A failure arriving while paused is recorded, but no retry is scheduled.
    const again = fail(paused, key, 2, t0 + DAY);
    expect(again.retries).toEqual([]);
    expect(next(again).status).toBe('paused');

    const resumedAt = t0 + 10 * DAY;
    const resumed = resumeSubscription(next(again), resumedAt);
    if (isRefusal(resumed)) throw new Error('refused');
    expect(next(resumed)).toMatchObject({ status: 'past_due', resumes: 1 });
    expect(resumed.retries).toEqual([
      { subscriptionId: 'sub1', key, step: 1, dueAt: t0 + 3 * DAY, resumes: 1 },
    ]);
  });

  it('cancel during dunning stops everything; later outcomes change nothing', () => {
    const r = bill(sub(), t0);
    const key = r.keys[0]!;
    const dunning = next(fail(r.sub, key, 1, t0));
    const c = cancelSubscription(dunning, t0 + 1_000);
    const canceled = next(c);
    expect(canceled).toMatchObject({ status: 'canceled', cancelReason: 'requested', dunning: [] });
    expect(c.events).toEqual([
      expect.objectContaining({ id: 'evt_sub_sub1_canceled', type: 'subscription.canceled' }),
    ]);
    expect(cancelSubscription(canceled, t0 + 2_000)).toEqual({ events: [], retries: [] });
    expect(fail(canceled, key, 2, t0 + DAY)).toEqual({ events: [], retries: [] });
    expect(succeed(canceled, key, 2, t0 + DAY)).toEqual({ events: [], retries: [] });
    const refusedPause = pauseSubscription(canceled, t0);
    const refusedResume = resumeSubscription(canceled, t0);
    expect(isRefusal(refusedPause) && isRefusal(refusedResume)).toBe(true);
    expect(planBilling(canceled, ms('2025-06-01T00:00:00Z'), { catchUpMax: 12 }).kind).toBe('idle');
  });
});

describe('a failure a person forced (operator_forced)', () => {
  it('opens no retry and does not cancel: the period is written off', () => {
    const s0 = sub();
    const { sub: s1, keys } = bill(s0, s0.nextPeriodStart);
    const key = keys[0]!;
    const period = periodIndexOfKey(s1, key)!;
    const d = onChargeFailed(
      s1,
      { key, period, attempt: 1, now: s0.nextPeriodStart + 1, reason: 'operator_forced' },
      POLICY, // whenExhausted: cancel
    );
    expect('refused' in d).toBe(false);
    const decided = d;
    expect(decided.retries).toEqual([]);
    expect(decided.next).toMatchObject({ status: 'past_due', delinquent: true, dunning: [] });
    // The same failure from the gateway would retry.
    expect(fail(s1, key, 1, s0.nextPeriodStart + 1).retries).toHaveLength(1);
  });
});
