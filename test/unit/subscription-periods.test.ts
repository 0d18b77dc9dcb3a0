/**
 * Period arithmetic across schedule changes (rule 11; src/subscriptions/periods.ts, changes.ts)
 * and the spacing of dunning retries (rule 6; outcomes.ts `retryDueAt`), as properties
 * (fast-check): a change of interval, count or anchor from the next period never moves a billed
 * period, never shortens the period paid for, keeps every period's key unique and increasing and
 * every key mapped back to its period; retries keep their gaps however late each one runs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DateTime } from 'luxon';
import { amountMinor } from '../../src/kernel/money.ts';
import type { BillingInterval, Schedule } from '../../src/subscriptions/calendar.ts';
import { changeSubscription, type SubscriptionChanges } from '../../src/subscriptions/changes.ts';
import { retryDueAt } from '../../src/subscriptions/outcomes.ts';
import { indexAt, periodIndexOfKey, periodKey, startAt } from '../../src/subscriptions/periods.ts';
import { createSubscription, type Subscription } from '../../src/subscriptions/record.ts';

const DAY = 86_400_000;
const ms = (iso: string) => Date.parse(iso);
const ZONES = [
  'Africa/Lagos',
  'America/New_York',
  'Europe/London',
  'Australia/Lord_Howe',
  'Pacific/Apia',
];
const INTERVALS: BillingInterval[] = ['day', 'week', 'month', 'year'];

const scheduleArb = fc.record({
  timezone: fc.constantFrom(...ZONES),
  interval: fc.constantFrom(...INTERVALS),
  intervalCount: fc.integer({ min: 1, max: 3 }),
  anchorMs: fc.integer({ min: ms('2010-01-01T00:00:00Z'), max: ms('2012-01-01T00:00:00Z') }),
});

const changeArb = fc.record({
  interval: fc.option(fc.constantFrom(...INTERVALS), { nil: undefined }),
  intervalCount: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
  /** An explicit anchor this long after the boundary (none: the interval alone changes). */
  anchorAfterMs: fc.option(fc.integer({ min: 0, max: 90 * DAY }), { nil: undefined }),
  billed: fc.integer({ min: 1, max: 25 }),
});

function subscriptionOf(s: {
  timezone: string;
  interval: BillingInterval;
  intervalCount: number;
  anchorMs: number;
}): Subscription {
  const schedule: Schedule = {
    anchor: DateTime.fromMillis(s.anchorMs, { zone: s.timezone }).toISO()!,
    timezone: s.timezone,
    interval: s.interval,
    intervalCount: s.intervalCount,
  };
  return createSubscription(
    {
      id: 'p',
      customerEmail: 'a@example.com',
      cardTokenSealed: 'sealed',
      amount: amountMinor(100),
      currency: 'NGN',
      schedule,
      metadata: {},
    },
    s.anchorMs - 1,
  );
}

/** `sub` as if its first `billed` periods were billed (and paid), at the last one's start. */
function billedUpTo(sub: Subscription, billed: number): Subscription {
  const next = Math.max(sub.nextPeriod, billed);
  return { ...sub, nextPeriod: next, nextPeriodStart: startAt(sub, next) };
}

/** Applies a change the way PATCH does, at `now`; the change must be accepted. */
function change(sub: Subscription, c: z_Change, now: number): Subscription {
  const boundary = sub.nextPeriodStart;
  const ch: SubscriptionChanges = {
    ...(c.interval !== undefined ? { interval: c.interval } : {}),
    ...(c.intervalCount !== undefined ? { intervalCount: c.intervalCount } : {}),
    ...(c.anchorAfterMs !== undefined
      ? {
          anchor: DateTime.fromMillis(boundary + c.anchorAfterMs, {
            zone: sub.schedule.timezone,
          }).toISO()!,
        }
      : {}),
  };
  const d = changeSubscription(sub, ch, now);
  if ('refused' in d) throw new Error(`refused: ${JSON.stringify(d)}`);
  return d.next ?? sub;
}
type z_Change = { interval?: BillingInterval; intervalCount?: number; anchorAfterMs?: number };

function checkPeriods(sub: Subscription, upTo: number) {
  const keys: string[] = [];
  let prev = -Infinity;
  for (let n = 0; n < upTo; n++) {
    const start = startAt(sub, n);
    // Non-decreasing; equal only for a calendar day a zone skipped (Apia 2011-12-30).
    expect(start).toBeGreaterThanOrEqual(prev);
    prev = start;
    keys.push(periodKey(sub, n));
  }
  // Unique and increasing: the key's date is the period's scheduled date.
  expect([...keys].sort()).toEqual(keys);
  expect(new Set(keys).size).toBe(keys.length);
  for (let n = 0; n < upTo; n++) expect(periodIndexOfKey(sub, keys[n]!)).toBe(n);
}

/**
 * Hundreds of calendar computations per property: seconds on a loaded machine. A bound for the
 * runner, not a measurement (the unit project's default is 5 s; three suites on two cores needed more).
 */
const PROPERTY_TIMEOUT_MS = 60_000;

describe('schedule changes from the next period (property)', () => {
  it(
    'keep billed periods, never shorten the one paid for, and keep keys unique and mapped back',
    () => {
      fc.assert(
        fc.property(
          scheduleArb,
          fc.array(changeArb, { minLength: 1, maxLength: 3 }),
          (schedule, changes) => {
            let sub = subscriptionOf(schedule);
            for (const c of changes) {
              sub = billedUpTo(sub, sub.nextPeriod + c.billed);
              const before = sub;
              const boundary = before.nextPeriodStart;
              const now = startAt(before, before.nextPeriod - 1);
              sub = change(before, c, now);
              // Billed periods: same start, same key.
              for (let n = 0; n < before.nextPeriod; n++) {
                expect(startAt(sub, n)).toBe(startAt(before, n));
                expect(periodKey(sub, n)).toBe(periodKey(before, n));
              }
              // The next period starts at the boundary, or at the (later) anchor given.
              const expectedStart =
                c.anchorAfterMs !== undefined ? boundary + c.anchorAfterMs : boundary;
              if (sub !== before) expect(sub.nextPeriodStart).toBe(expectedStart);
              expect(sub.nextPeriodStart).toBeGreaterThanOrEqual(boundary);
              expect(startAt(sub, sub.nextPeriod)).toBe(sub.nextPeriodStart);
              // The period paid for ends where the next one starts: never shortened.
              expect(startAt(sub, before.nextPeriod)).toBeGreaterThanOrEqual(boundary);
            }
            checkPeriods(sub, sub.nextPeriod + 30);
          },
        ),
        { numRuns: 150 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'locate the period containing an instant under the current schedule',
    () => {
      fc.assert(
        fc.property(
          scheduleArb,
          changeArb,
          fc.integer({ min: 0, max: 200 * DAY }),
          (schedule, c, ahead) => {
            const before = billedUpTo(subscriptionOf(schedule), c.billed);
            const sub = change(before, c, startAt(before, before.nextPeriod - 1));
            const t = startAt(before, before.nextPeriod - 1) + ahead;
            const i = indexAt(sub, t);
            expect(startAt(sub, i)).toBeLessThanOrEqual(t);
            expect(startAt(sub, i + 1)).toBeGreaterThan(t);
          },
        ),
        { numRuns: 150 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('an interval change without an anchor keeps the old calendar when one of its periods starts at the boundary', () => {
    const sub = billedUpTo(
      subscriptionOf({
        timezone: 'America/New_York',
        interval: 'month',
        intervalCount: 1,
        anchorMs: ms('2025-01-31T14:00:00Z'),
      }),
      3, // Jan 31, Feb 28, Mar 31 billed: the next period starts Apr 30
    );
    const q = change(sub, { intervalCount: 3 }, ms('2025-04-01T00:00:00Z'));
    expect(q.schedule.anchor).toBe(sub.schedule.anchor);
    expect([3, 4, 5].map((n) => periodKey(q, n))).toEqual([
      'sub_p_20250430',
      'sub_p_20250731',
      'sub_p_20251031',
    ]);
    // Feb 28 is not on the quarterly calendar from Jan 31: the new one is anchored on an earlier
    // 31st (Aug 31, 2024) that has Feb 28 among its starts, so it keeps the 31st (not May 28).
    const early = billedUpTo(
      subscriptionOf({
        timezone: 'America/New_York',
        interval: 'month',
        intervalCount: 1,
        anchorMs: ms('2025-01-31T14:00:00Z'),
      }),
      1,
    );
    const q2 = change(early, { intervalCount: 3 }, ms('2025-02-01T00:00:00Z'));
    expect([1, 2, 3].map((n) => periodKey(q2, n))).toEqual([
      'sub_p_20250228',
      'sub_p_20250531',
      'sub_p_20250831',
    ]);
  });
});

describe('dunning retries keep their gaps (property)', () => {
  it(
    'each retry is due at its nominal time or its gap after the previous failure, whichever is later',
    () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: 10 * DAY }), { minLength: 1, maxLength: 6 }),
          fc.array(fc.integer({ min: 0, max: 30 * DAY }), { minLength: 6, maxLength: 6 }),
          (gaps, lateness) => {
            // A schedule of cumulative offsets, as DUNNING_SCHEDULE is written (1d,3d,5d,7d).
            const schedule = gaps.map((_, i) => gaps.slice(0, i + 1).reduce((a, b) => a + b, 0));
            const first = ms('2025-02-01T00:00:00Z');
            let failedAt = first;
            for (let step = 0; step < schedule.length; step++) {
              const due = retryDueAt(first, failedAt, schedule, step)!;
              expect(due).toBeGreaterThanOrEqual(first + schedule[step]!);
              expect(due - failedAt).toBeGreaterThanOrEqual(gaps[step]!);
              // Without delays, the nominal schedule exactly.
              if (lateness.slice(0, step).every((l) => l === 0))
                expect(due).toBe(first + schedule[step]!);
              // The retry runs (and fails) late by any amount, e.g. the scheduler was down.
              failedAt = due + lateness[step]!;
            }
            expect(retryDueAt(first, failedAt, schedule, schedule.length)).toBeUndefined();
          },
        ),
        { numRuns: 300 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('after downtime the four default retries are 1, 2, 2 and 2 days apart, not back to back', () => {
    const schedule = [1, 3, 5, 7].map((d) => d * DAY);
    const first = ms('2025-02-01T00:00:00Z');
    // Down for ten days: retry 1 runs (and fails) ten days late.
    let failedAt = first + 11 * DAY;
    const times: number[] = [];
    for (let step = 1; step < 4; step++) {
      const due = retryDueAt(first, failedAt, schedule, step)!;
      times.push(due);
      failedAt = due;
    }
    expect(times.map((t) => (t - first) / DAY)).toEqual([13, 15, 17]);
  });
});
