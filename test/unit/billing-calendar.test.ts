import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { DateTime, IANAZone } from 'luxon';
import {
  BILLING_INTERVALS,
  dunningDueAt,
  duePeriods,
  period,
  periodIndexAt,
  periodStart,
  periodStartYmd,
  scheduleSchema,
} from '../../src/subscriptions/calendar.ts';
import type { BillingInterval, Schedule } from '../../src/subscriptions/calendar.ts';

const ZONES = [
  'Africa/Lagos',
  'America/New_York',
  'Europe/London',
  'Pacific/Apia',
  'Australia/Lord_Howe',
  'Asia/Kolkata',
  'America/St_Johns',
  'Pacific/Chatham',
  'UTC',
] as const;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Local ISO of an instant in a zone, the form the example tables are written in. */
const local = (ms: number, zone: string): string =>
  DateTime.fromMillis(ms, { zone }).toISO({ suppressMilliseconds: true })!;

const schedule = (
  anchor: string,
  timezone: string,
  interval: BillingInterval,
  intervalCount = 1,
): Schedule => ({ anchor, timezone, interval, intervalCount });

/** Anchors given in a zone's wall-clock time, the way merchants think of them. */
const anchorAt = (wall: string, zone: string): string => DateTime.fromISO(wall, { zone }).toISO()!;

const starts = (s: Schedule, count: number): string[] =>
  Array.from({ length: count }, (_, n) => local(periodStart(s, n), s.timezone));

const MIN_ANCHOR_MS = Date.UTC(1970, 0, 1);
const MAX_ANCHOR_MS = Date.UTC(2100, 0, 1);

/**
 * Anchors 1970–2100: half uniform instants, half biased to what breaks calendars (month ends,
 * the small hours when DST changes, on the minute and half hour), in either ISO form.
 */
const scheduleArb: fc.Arbitrary<Schedule> = fc
  .record({
    timezone: fc.constantFrom(...ZONES),
    interval: fc.constantFrom(...BILLING_INTERVALS),
    intervalCount: fc.integer({ min: 1, max: 12 }),
    uniformMs: fc.integer({ min: MIN_ANCHOR_MS, max: MAX_ANCHOR_MS }),
    biased: fc.option(
      fc.record({
        year: fc.integer({ min: 1970, max: 2099 }),
        month: fc.integer({ min: 1, max: 12 }),
        day: fc.constantFrom(1, 28, 29, 30, 31),
        hour: fc.integer({ min: 0, max: 3 }),
        minute: fc.constantFrom(0, 15, 30, 45, 59),
      }),
    ),
    withOffset: fc.boolean(),
  })
  .map(({ timezone, interval, intervalCount, uniformMs, biased, withOffset }) => {
    let ms = uniformMs;
    if (biased) {
      const day = Math.min(biased.day, DateTime.utc(biased.year, biased.month).daysInMonth!);
      const wallMs = Date.UTC(biased.year, biased.month - 1, day, biased.hour, biased.minute);
      // Any instant near that wall time will do: an anchor is an instant, not a wall time.
      ms = wallMs - IANAZone.create(timezone).offset(wallMs) * 60_000;
    }
    const anchor = withOffset
      ? DateTime.fromMillis(ms, { zone: timezone }).toISO()!
      : new Date(ms).toISOString();
    return { anchor, timezone, interval, intervalCount };
  });

const indexArb = fc.integer({ min: 0, max: 200 });

/** An empty period is rule 6 of the module: only a daily, count-1 schedule over a skipped day. */
function isEmpty(s: Schedule, n: number): boolean {
  const p = period(s, n);
  return p.start === p.end;
}

/** The scheduled wall time of period n, by luxon alone: the oracle the module must agree with. */
function scheduledWall(s: Schedule, n: number): DateTime {
  const a = DateTime.fromISO(s.anchor).setZone(s.timezone);
  const wall = DateTime.utc(a.year, a.month, a.day, a.hour, a.minute, a.second, a.millisecond);
  return wall.plus({ [`${s.interval}s`]: n * s.intervalCount });
}

describe('billing calendar properties', () => {
  it('periods are contiguous, non-overlapping and strictly increasing (but for skipped days)', () => {
    fc.assert(
      fc.property(scheduleArb, indexArb, (s, n0) => {
        for (let n = n0; n < n0 + 6; n += 1) {
          const p = period(s, n);
          const next = period(s, n + 1);
          expect(p.index).toBe(n);
          expect(p.end).toBe(next.start);
          expect(p.start).toBe(periodStart(s, n));
          if (p.start === p.end) {
            // Rule 6: the only empty periods are scheduled on a day the zone skipped.
            expect(s.interval === 'day' && s.intervalCount === 1).toBe(true);
            expect(periodStartYmd(s, n)).toBe('20111230');
            expect(s.timezone).toBe('Pacific/Apia');
          } else {
            expect(p.end).toBeGreaterThan(p.start);
          }
        }
      }),
    );
  });

  it('period 0 starts at the anchor instant', () => {
    fc.assert(
      fc.property(scheduleArb, (s) => {
        expect(periodStart(s, 0)).toBe(Date.parse(s.anchor));
      }),
    );
  });

  it('the n-th period is n steps from the anchor, taken at once (not step after step)', () => {
    fc.assert(
      fc.property(scheduleArb, fc.integer({ min: 1, max: 200 }), (s, n) => {
        const oneBigStep = { ...s, intervalCount: s.intervalCount * n };
        expect(periodStart(s, n)).toBe(periodStart(oneBigStep, 1));
      }),
    );
  });

  it('keeps the wall-clock time; a missing time moves forward, a repeated one takes the first', () => {
    fc.assert(
      fc.property(scheduleArb, fc.integer({ min: 1, max: 200 }), (s, n) => {
        const wall = scheduledWall(s, n);
        const start = DateTime.fromMillis(periodStart(s, n), { zone: s.timezone });
        const startWall = DateTime.utc(
          start.year,
          start.month,
          start.day,
          start.hour,
          start.minute,
          start.second,
          start.millisecond,
        );
        // Does the zone's clock ever show `wall`? Luxon moves a missing wall time, so compare back.
        const inZone = DateTime.fromObject(wall.toObject(), { zone: s.timezone });
        const exists =
          inZone.toFormat('yyyy-MM-dd HH:mm:ss.SSS') === wall.toFormat('yyyy-MM-dd HH:mm:ss.SSS');
        if (exists) {
          expect(startWall.toMillis()).toBe(wall.toMillis());
          // The earlier of two instants: no DST shift ago did the clock show the same time.
          for (const backMs of [30 * 60_000, HOUR_MS, 2 * HOUR_MS]) {
            const earlier = DateTime.fromMillis(start.toMillis() - backMs, { zone: s.timezone });
            expect(earlier.toFormat('yyyy-MM-dd HH:mm:ss.SSS')).not.toBe(
              wall.toFormat('yyyy-MM-dd HH:mm:ss.SSS'),
            );
          }
        } else {
          const shiftMs = startWall.toMillis() - wall.toMillis();
          expect(shiftMs).toBeGreaterThan(0);
          expect(shiftMs).toBeLessThanOrEqual(DAY_MS);
        }
      }),
    );
  });

  it('month and year steps clamp to short months without sticking there', () => {
    const monthly = scheduleArb.filter((s) => s.interval === 'month' || s.interval === 'year');
    fc.assert(
      fc.property(monthly, fc.integer({ min: 1, max: 200 }), (s, n) => {
        const anchorDay = DateTime.fromISO(s.anchor).setZone(s.timezone).day;
        const wall = scheduledWall(s, n);
        expect(wall.day).toBe(Math.min(anchorDay, wall.daysInMonth!));
        expect(periodStartYmd(s, n)).toBe(wall.toFormat('yyyyMMdd'));
      }),
    );
  });

  it('periodIndexAt finds the period containing an instant, and -1 before the anchor', () => {
    fc.assert(
      fc.property(scheduleArb, indexArb, (s, n) => {
        fc.pre(!isEmpty(s, n));
        const p = period(s, n);
        expect(periodIndexAt(s, p.start)).toBe(n);
        expect(periodIndexAt(s, p.end - 1)).toBe(n);
        expect(periodIndexAt(s, Math.floor((p.start + p.end) / 2))).toBe(n);
        expect(periodIndexAt(s, periodStart(s, 0) - 1)).toBe(-1);
      }),
    );
  });

  it('two different periods never share a yyyymmdd, so intent keys never collide', () => {
    fc.assert(
      fc.property(scheduleArb, indexArb, fc.integer({ min: 1, max: 400 }), (s, n, gap) => {
        const ymds = Array.from({ length: 6 }, (_, i) => periodStartYmd(s, n + i));
        ymds.push(periodStartYmd(s, n + 5 + gap));
        for (const ymd of ymds) expect(ymd).toMatch(/^\d{8}$/);
        // Strictly increasing as strings (fixed width), hence pairwise distinct.
        for (let i = 1; i < ymds.length; i += 1) expect(ymds[i]! > ymds[i - 1]!).toBe(true);
      }),
    );
  });

  it('duePeriods returns each due period from fromIndex, in order, capped at max', () => {
    fc.assert(
      fc.property(
        scheduleArb,
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 80 }),
        fc.integer({ min: 0, max: 25 }),
        fc.integer({ min: 0, max: 1000 }),
        (s, fromIndex, nowIndex, max, fraction) => {
          const p = period(s, nowIndex);
          const nowMs = p.start + Math.floor(((p.end - p.start) * fraction) / 1000);
          const due = duePeriods(s, { fromIndex, nowMs, max });
          const last = periodIndexAt(s, nowMs);
          const expected: number[] = [];
          for (let n = fromIndex; n <= last; n += 1) if (!isEmpty(s, n)) expected.push(n);
          expect(due).toEqual(expected.slice(0, max));
          for (const n of due) expect(periodStart(s, n)).toBeLessThanOrEqual(nowMs);
        },
      ),
    );
  });
});

describe('month ends and leap days', () => {
  it.each([
    [
      'monthly from Jan 31 2024 (leap year)',
      '2024-01-31T09:00',
      'month',
      [
        '2024-01-31T09:00:00+01:00',
        '2024-02-29T09:00:00+01:00',
        '2024-03-31T09:00:00+01:00',
        '2024-04-30T09:00:00+01:00',
        '2024-05-31T09:00:00+01:00',
        '2024-06-30T09:00:00+01:00',
      ],
    ],
    [
      'monthly from Jan 31 2025',
      '2025-01-31T09:00',
      'month',
      [
        '2025-01-31T09:00:00+01:00',
        '2025-02-28T09:00:00+01:00',
        '2025-03-31T09:00:00+01:00',
        '2025-04-30T09:00:00+01:00',
      ],
    ],
    [
      'yearly from Feb 29 2024',
      '2024-02-29T00:00',
      'year',
      [
        '2024-02-29T00:00:00+01:00',
        '2025-02-28T00:00:00+01:00',
        '2026-02-28T00:00:00+01:00',
        '2027-02-28T00:00:00+01:00',
        '2028-02-29T00:00:00+01:00',
      ],
    ],
  ] as const)('%s (Africa/Lagos, no DST)', (_name, wall, interval, expected) => {
    const s = schedule(anchorAt(wall, 'Africa/Lagos'), 'Africa/Lagos', interval);
    expect(starts(s, expected.length)).toEqual(expected);
  });

  it('quarterly from Nov 30 lands on Feb 28 then May 30, not May 28', () => {
    const s = schedule(anchorAt('2024-11-30T12:00', 'Africa/Lagos'), 'Africa/Lagos', 'month', 3);
    expect([0, 1, 2, 3].map((n) => periodStartYmd(s, n))).toEqual([
      '20241130',
      '20250228',
      '20250530',
      '20250830',
    ]);
  });
});

describe('DST in America/New_York, 2025 (Mar 9 02:00 → 03:00, Nov 2 02:00 → 01:00)', () => {
  const NY = 'America/New_York';

  /**
   * A scheduler ticking every 5 minutes that bills what duePeriods returns: every period must be
   * billed exactly once, in order, soon after it starts, with one key per calendar day.
   */
  function simulate(s: Schedule, fromMs: number, toMs: number) {
    const billed: { index: number; ymd: string; atMs: number }[] = [];
    let next = 0;
    for (let t = fromMs; t <= toMs; t += 5 * 60_000) {
      for (const index of duePeriods(s, { fromIndex: next, nowMs: t, max: 10 })) {
        billed.push({ index, ymd: periodStartYmd(s, index), atMs: t });
        next = index + 1;
      }
    }
    return billed;
  }

  it.each([
    [
      'daily at 02:30 across spring forward',
      '2025-03-07T02:30',
      [
        '2025-03-07T02:30:00-05:00',
        '2025-03-08T02:30:00-05:00',
        '2025-03-09T03:30:00-04:00', // 02:30 does not exist: moved forward by the gap
        '2025-03-10T02:30:00-04:00',
        '2025-03-11T02:30:00-04:00',
      ],
      [24, 24, 23, 24],
    ],
    [
      'daily at 01:30 across spring forward',
      '2025-03-07T01:30',
      [
        '2025-03-07T01:30:00-05:00',
        '2025-03-08T01:30:00-05:00',
        '2025-03-09T01:30:00-05:00',
        '2025-03-10T01:30:00-04:00',
        '2025-03-11T01:30:00-04:00',
      ],
      [24, 24, 23, 24],
    ],
    [
      'daily at 02:30 across fall back',
      '2025-10-31T02:30',
      [
        '2025-10-31T02:30:00-04:00',
        '2025-11-01T02:30:00-04:00',
        '2025-11-02T02:30:00-05:00',
        '2025-11-03T02:30:00-05:00',
        '2025-11-04T02:30:00-05:00',
      ],
      [24, 25, 24, 24],
    ],
    [
      'daily at 01:30 across fall back',
      '2025-10-31T01:30',
      [
        '2025-10-31T01:30:00-04:00',
        '2025-11-01T01:30:00-04:00',
        '2025-11-02T01:30:00-04:00', // 01:30 happens twice: the first, still EDT
        '2025-11-03T01:30:00-05:00',
        '2025-11-04T01:30:00-05:00',
      ],
      [24, 24, 25, 24],
    ],
  ] as const)('%s', (_name, wall, expected, hours) => {
    const s = schedule(anchorAt(wall, NY), NY, 'day');
    expect(starts(s, expected.length)).toEqual(expected);
    expect(
      [0, 1, 2, 3].map((n) => {
        const p = period(s, n);
        return (p.end - p.start) / HOUR_MS;
      }),
    ).toEqual(hours);

    const billed = simulate(s, periodStart(s, 0) - HOUR_MS, periodStart(s, 4) + HOUR_MS);
    expect(billed.map((b) => b.index)).toEqual([0, 1, 2, 3, 4]);
    expect(new Set(billed.map((b) => b.ymd)).size).toBe(5);
    for (const b of billed) {
      expect(b.atMs).toBeGreaterThanOrEqual(periodStart(s, b.index));
      expect(b.atMs - periodStart(s, b.index)).toBeLessThan(5 * 60_000);
    }
  });

  it('the second 01:30 on Nov 2 is inside the period that began at the first', () => {
    const s = schedule(anchorAt('2025-10-31T01:30', NY), NY, 'day');
    const first = Date.parse('2025-11-02T01:30:00-04:00');
    const second = Date.parse('2025-11-02T01:30:00-05:00');
    expect(periodIndexAt(s, first)).toBe(2);
    expect(periodIndexAt(s, second)).toBe(2);
    expect(duePeriods(s, { fromIndex: 3, nowMs: second, max: 10 })).toEqual([]);
  });

  it('an anchor at the second 01:30 is honoured exactly for period 0', () => {
    const s = schedule('2025-11-02T01:30:00-05:00', NY, 'day');
    expect(starts(s, 2)).toEqual(['2025-11-02T01:30:00-05:00', '2025-11-03T01:30:00-05:00']);
  });

  it('weekly on Sunday 02:30 keeps 02:30 where it exists', () => {
    const s = schedule(anchorAt('2025-03-02T02:30', NY), NY, 'week');
    expect(starts(s, 3)).toEqual([
      '2025-03-02T02:30:00-05:00',
      '2025-03-09T03:30:00-04:00',
      '2025-03-16T02:30:00-04:00',
    ]);
  });
});

describe('other zones', () => {
  it('Africa/Lagos (no DST): every daily period is 24 h through a whole year', () => {
    const s = schedule(anchorAt('2025-01-01T00:00', 'Africa/Lagos'), 'Africa/Lagos', 'day');
    for (let n = 0; n < 365; n += 1) {
      const p = period(s, n);
      expect(p.end - p.start).toBe(DAY_MS);
    }
    expect(local(periodStart(s, 364), 'Africa/Lagos')).toBe('2025-12-31T00:00:00+01:00');
  });

  describe('Pacific/Apia skipped 2011-12-30', () => {
    const APIA = 'Pacific/Apia';
    const s = schedule(anchorAt('2011-12-28T12:00', APIA), APIA, 'day');

    it('a daily schedule bills Dec 29 then Dec 31, never twice', () => {
      expect(starts(s, 5)).toEqual([
        '2011-12-28T12:00:00-10:00',
        '2011-12-29T12:00:00-10:00',
        '2011-12-31T12:00:00+14:00', // the period scheduled for the missing day: empty
        '2011-12-31T12:00:00+14:00',
        '2012-01-01T12:00:00+14:00',
      ]);
      expect(period(s, 2)).toEqual({ index: 2, start: periodStart(s, 3), end: periodStart(s, 3) });
      expect(
        duePeriods(s, { fromIndex: 0, nowMs: Date.parse('2012-01-01T12:00:00+14:00'), max: 10 }),
      ).toEqual([0, 1, 3, 4]);
      expect(duePeriods(s, { fromIndex: 2, nowMs: periodStart(s, 3), max: 1 })).toEqual([3]);
      expect([1, 3, 4].map((n) => periodStartYmd(s, n))).toEqual([
        '20111229',
        '20111231',
        '20120101',
      ]);
    });

    it('the period containing the missing day runs from Dec 29 to Dec 31 on the wall clock', () => {
      const p = period(s, 1);
      expect(local(p.end, APIA)).toBe('2011-12-31T12:00:00+14:00');
      const midnightOfTheJump = Date.parse('2011-12-31T00:00:00+14:00');
      expect(periodIndexAt(s, midnightOfTheJump)).toBe(1);
      expect(periodIndexAt(s, p.end)).toBe(3);
      expect(periodIndexAt(s, p.end - 1)).toBe(1);
    });

    it('a weekly period across the missing day is six days long', () => {
      const weekly = schedule(anchorAt('2011-12-26T09:00', APIA), APIA, 'week');
      expect(starts(weekly, 2)).toEqual(['2011-12-26T09:00:00-10:00', '2012-01-02T09:00:00+14:00']);
      const p = period(weekly, 0);
      expect(p.end - p.start).toBe(6 * DAY_MS);
    });
  });

  it('Australia/Lord_Howe: half-hour DST shifts (2025-04-06 02:00 → 01:30, 2025-10-05 02:00 → 02:30)', () => {
    const LH = 'Australia/Lord_Howe';
    const autumn = schedule(anchorAt('2025-04-05T01:45', LH), LH, 'day');
    expect(starts(autumn, 3)).toEqual([
      '2025-04-05T01:45:00+11:00',
      '2025-04-06T01:45:00+11:00', // happens twice: the first
      '2025-04-07T01:45:00+10:30',
    ]);
    expect((period(autumn, 1).end - period(autumn, 1).start) / HOUR_MS).toBe(24.5);

    const spring = schedule(anchorAt('2025-10-04T02:15', LH), LH, 'day');
    expect(starts(spring, 3)).toEqual([
      '2025-10-04T02:15:00+10:30',
      '2025-10-05T02:45:00+11:00', // 02:15 does not exist: moved forward by 30 min
      '2025-10-06T02:15:00+11:00',
    ]);
    expect((period(spring, 1).end - period(spring, 1).start) / HOUR_MS).toBe(23.5);
  });

  it('Europe/London monthly at 01:30 on the last Sunday of March keeps local time', () => {
    const s = schedule(anchorAt('2025-02-28T01:30', 'Europe/London'), 'Europe/London', 'month');
    expect(starts(s, 3)).toEqual([
      '2025-02-28T01:30:00+00:00',
      '2025-03-28T01:30:00+00:00',
      '2025-04-28T01:30:00+01:00',
    ]);
  });

  it('biweekly in America/St_Johns keeps 00:30 across the 2025 changes', () => {
    const ZONE = 'America/St_Johns';
    const s = schedule(anchorAt('2025-03-02T00:30', ZONE), ZONE, 'week', 2);
    expect(starts(s, 3)).toEqual([
      '2025-03-02T00:30:00-03:30',
      '2025-03-16T00:30:00-02:30',
      '2025-03-30T00:30:00-02:30',
    ]);
  });
});

describe('periodIndexAt and duePeriods at scale', () => {
  it('finds a period 47 000 days out without walking there', () => {
    const s = schedule('1970-01-01T00:00:00Z', 'America/New_York', 'day');
    const nowMs = Date.parse('2098-09-01T12:00:00Z');
    const n = periodIndexAt(s, nowMs);
    expect(periodStart(s, n)).toBeLessThanOrEqual(nowMs);
    expect(periodStart(s, n + 1)).toBeGreaterThan(nowMs);
    // The anchor is 19:00 on 1969-12-31 in New York; 12:00Z is 08:00 EDT, so yesterday's period.
    expect(local(periodStart(s, n), 'America/New_York')).toBe('2098-08-31T19:00:00-04:00');
    const days = DateTime.utc(2098, 8, 31).diff(DateTime.utc(1969, 12, 31), 'days').days;
    expect(n).toBe(days);
  });

  it('catch-up after downtime is capped and resumes where it stopped', () => {
    const s = schedule('2025-01-01T00:00:00Z', 'UTC', 'day');
    const nowMs = Date.parse('2025-03-01T06:00:00Z');
    const first = duePeriods(s, { fromIndex: 0, nowMs, max: 25 });
    expect(first).toEqual(Array.from({ length: 25 }, (_, i) => i));
    const second = duePeriods(s, { fromIndex: 25, nowMs, max: 100 });
    expect(second).toEqual(Array.from({ length: 59 - 25 + 1 }, (_, i) => 25 + i));
    expect(duePeriods(s, { fromIndex: 60, nowMs, max: 100 })).toEqual([]);
    expect(duePeriods(s, { fromIndex: 0, nowMs, max: 0 })).toEqual([]);
    expect(
      duePeriods(s, { fromIndex: 0, nowMs: Date.parse('2024-12-31T23:59:59Z'), max: 5 }),
    ).toEqual([]);
  });

  it('refuses negative or fractional indexes', () => {
    const s = schedule('2025-01-01T00:00:00Z', 'UTC', 'day');
    expect(() => periodStart(s, -1)).toThrow(RangeError);
    expect(() => period(s, 1.5)).toThrow(RangeError);
    expect(() => duePeriods(s, { fromIndex: -1, nowMs: 0, max: 1 })).toThrow(RangeError);
    expect(() => periodStart({ ...s, timezone: 'Mars/Olympus' }, 1)).toThrow(RangeError);
  });
});

describe('scheduleSchema', () => {
  const valid = {
    anchor: '2025-01-31T09:00:00+01:00',
    timezone: 'Africa/Lagos',
    interval: 'month',
    intervalCount: 1,
  };

  it('accepts a valid schedule, with Z or an offset', () => {
    expect(scheduleSchema.parse(valid)).toEqual(valid);
    expect(scheduleSchema.safeParse({ ...valid, anchor: '2025-01-31T08:00:00.000Z' }).success).toBe(
      true,
    );
  });

  it.each([
    ['unknown zone', { timezone: 'Africa/Atlantis' }],
    ['empty zone', { timezone: '' }],
    ['date without time', { anchor: '2025-01-31' }],
    ['local time without offset', { anchor: '2025-01-31T09:00:00' }],
    ['impossible date', { anchor: '2025-02-30T09:00:00Z' }],
    ['not ISO', { anchor: 'Jan 31 2025 09:00 GMT' }],
    ['count 0', { intervalCount: 0 }],
    ['count 366', { intervalCount: 366 }],
    ['fractional count', { intervalCount: 1.5 }],
    ['unknown interval', { interval: 'hour' }],
  ])('refuses %s', (_name, patch) => {
    expect(scheduleSchema.safeParse({ ...valid, ...patch }).success).toBe(false);
  });
});

describe('dunningDueAt', () => {
  const failedAtMs = Date.parse('2025-03-01T10:00:00Z');
  const scheduleMs = [1, 3, 5, 7].map((d) => d * DAY_MS);

  it.each([
    [0, '2025-03-02T10:00:00.000Z'],
    [1, '2025-03-04T10:00:00.000Z'],
    [2, '2025-03-06T10:00:00.000Z'],
    [3, '2025-03-08T10:00:00.000Z'],
  ])('step %i is due at %s (measured from the failure)', (step, iso) => {
    expect(new Date(dunningDueAt(failedAtMs, scheduleMs, step)!).toISOString()).toBe(iso);
  });

  it('is undefined once exhausted, and with no schedule at all', () => {
    expect(dunningDueAt(failedAtMs, scheduleMs, 4)).toBeUndefined();
    expect(dunningDueAt(failedAtMs, [], 0)).toBeUndefined();
  });

  it('refuses a negative or fractional step', () => {
    expect(() => dunningDueAt(failedAtMs, scheduleMs, -1)).toThrow(RangeError);
    expect(() => dunningDueAt(failedAtMs, scheduleMs, 0.5)).toThrow(RangeError);
  });
});
