/**
 * The billing calendar of docs/product.md §7 (docs/subscriptions.md "The calendar"): pure maths
 * over a subscription's schedule. Time is always an argument (`nowMs`), never read from the system
 * clock.
 *
 * The rules, in one place:
 *
 * 1. **From the anchor.** Period `n` starts at the anchor's local date-time in the subscription's
 *    zone plus `n * intervalCount` units, computed on the anchor in one step, never by adding to
 *    the previous period. Month and year steps clamp to the end of a shorter month and do not
 *    stick there: anchored Jan 31 → Feb 28 (29) → Mar 31 → Apr 30; anchored Feb 29 → Feb 28 in
 *    common years → Feb 29 again in leap years.
 * 2. **Wall-clock time is kept** in the zone across DST: a 09:00 subscription bills at 09:00 local
 *    before and after a change, so a period across a change is 23 h or 25 h (30 min off at
 *    Lord Howe) long.
 * 3. **A local time that does not exist** (spring-forward gap) is moved forward by the length of
 *    the gap, as luxon does: 02:30 on a day New York jumps 02:00 → 03:00 bills at 03:30 EDT.
 * 4. **A local time that happens twice** (fall-back overlap) bills at the earlier instant, the
 *    first time the clock shows it. Luxon's own `plus` picks whichever occurrence has the anchor's
 *    offset, which would make the choice depend on the anchor's season; we resolve it ourselves.
 * 5. **Period 0 starts at the anchor instant exactly**, even when the anchor is the later of two
 *    instants with the same local time: it is the instant the merchant asked for.
 * 6. **A skipped calendar day** (Pacific/Apia and Pacific/Fakaofo went from 2011-12-29 straight to
 *    2011-12-31; Kwajalein 1993, Kanton and Kiritimati 1994–95) swallows a daily period whose
 *    scheduled date is that day: rule 3 moves it onto the next day's start, so it is empty
 *    (`start === end`), contains no instant, is never returned by `periodIndexAt` and never due.
 *    The period before it ends at the next day's start, so it spans the missing day and nothing
 *    is billed twice. This is the only way two period starts can be equal: the skipped span is at
 *    most 24 h (tz offsets stay within −12 h…+14 h), so it takes a daily, count-1 schedule.
 *
 * Starts are therefore non-decreasing in `n`, strictly increasing except at rule 6.
 */
import { DateTime, IANAZone } from 'luxon';
import { z } from 'zod';

export const BILLING_INTERVALS = ['day', 'week', 'month', 'year'] as const;
export type BillingInterval = (typeof BILLING_INTERVALS)[number];

/** Upper bound on `intervalCount` accepted at the edge: a year of days, far beyond real plans. */
export const MAX_INTERVAL_COUNT = 365;

/** When and how often a subscription bills. */
export interface Schedule {
  /** ISO 8601 instant with `Z` or an offset: the first billing instant (period 0 starts here). */
  anchor: string;
  /** IANA zone the calendar is computed in, e.g. `Africa/Lagos`. */
  timezone: string;
  interval: BillingInterval;
  /** Units per period, >= 1 (`month` × 3 is quarterly). */
  intervalCount: number;
}

/** Period `index` covers `[start, end)`, epoch milliseconds; `end` is the next period's start. */
export interface BillingPeriod {
  index: number;
  start: number;
  end: number;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

// An instant must say which instant it is: a date or a local time without `Z` or an offset would
// be read in the server's zone, and the schedule would depend on where it runs.
const TIME_WITH_OFFSET = /T.*(?:Z|[+-]\d{2}(?::?\d{2})?)$/i;

function parseAnchorMs(anchor: string): number | undefined {
  if (!TIME_WITH_OFFSET.test(anchor)) return undefined;
  const parsed = DateTime.fromISO(anchor, { setZone: true });
  return parsed.isValid ? parsed.toMillis() : undefined;
}

/** Epoch ms of an instant the schedule's anchor rule accepted (luxon reads every ISO 8601 form it does). */
export function instantMs(iso: string): number {
  return DateTime.fromISO(iso, { setZone: true }).toMillis();
}

/**
 * An anchor as it is stored and shown: RFC 3339 in the schedule's own zone, the same instant
 * (`2025-01-31T08:00Z` in Africa/Lagos is `2025-01-31T09:00:00+01:00`). Any other ISO 8601 form
 * the input accepts (no seconds, `+01`, basic or ordinal dates) is written out this way.
 */
export function anchorInZone(anchor: string, timezone: string): string {
  const at = DateTime.fromISO(anchor, { setZone: true });
  return (at.isValid ? at.setZone(timezone).toISO({ suppressMilliseconds: true }) : null) ?? anchor;
}

/** Validates a schedule at the edge (HTTP, CSV, store reads); the functions below trust its shape. */
export const scheduleSchema = z.object({
  anchor: z
    .string()
    .refine(
      (s) => parseAnchorMs(s) !== undefined,
      'anchor must be an ISO 8601 instant with Z or an offset',
    ),
  timezone: z
    .string()
    .refine((tz) => IANAZone.isValidZone(tz), 'timezone must be a valid IANA zone'),
  interval: z.enum(BILLING_INTERVALS),
  intervalCount: z.number().int().min(1).max(MAX_INTERVAL_COUNT),
}) satisfies z.ZodType<Schedule>;

const LUXON_UNIT = {
  day: 'days',
  week: 'weeks',
  month: 'months',
  year: 'years',
} as const satisfies Record<BillingInterval, string>;

/** A schedule parsed once per call, so loops do not re-parse the anchor and zone. */
interface Compiled {
  readonly zone: IANAZone;
  readonly anchorMs: number;
  /** The anchor's wall-clock date-time, held in UTC so that calendar arithmetic sees no DST. */
  readonly anchorWall: DateTime;
  readonly interval: BillingInterval;
  readonly count: number;
}

function compile(schedule: Schedule): Compiled {
  const anchorMs = parseAnchorMs(schedule.anchor);
  if (anchorMs === undefined) throw new RangeError(`invalid schedule anchor: ${schedule.anchor}`);
  // `create` is cached per name and validates once; `isValidZone` would build an Intl formatter
  // on every call, which dominated a scheduler tick.
  const zone = IANAZone.create(schedule.timezone);
  if (!zone.isValid) throw new RangeError(`invalid schedule timezone: ${schedule.timezone}`);
  if (!Number.isSafeInteger(schedule.intervalCount) || schedule.intervalCount < 1) {
    throw new RangeError(`invalid schedule intervalCount: ${schedule.intervalCount}`);
  }
  return {
    zone,
    anchorMs,
    anchorWall: DateTime.fromMillis(anchorMs + offsetMs(zone, anchorMs), { zone: 'utc' }),
    interval: schedule.interval,
    count: schedule.intervalCount,
  };
}

function offsetMs(zone: IANAZone, epochMs: number): number {
  // Rounded: pre-1972 local mean time offsets have seconds, which luxon reports as fractional minutes.
  return Math.round(zone.offset(epochMs) * MINUTE_MS);
}

function checkIndex(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`period index out of range: ${n}`);
}

/** The scheduled wall-clock date-time of period `n` (rule 1), before it meets the zone's rules. */
function scheduledWall(c: Compiled, n: number): DateTime {
  if (n === 0) return c.anchorWall;
  const wall = c.anchorWall.plus({ [LUXON_UNIT[c.interval]]: n * c.count });
  if (!wall.isValid) throw new RangeError(`period ${n} is beyond the calendar`);
  return wall;
}

/**
 * The instant at which the zone's clock shows `wallMs` (a wall-clock time encoded as if UTC):
 * the earlier one if it shows it twice (rule 4), shifted forward by the gap if never (rule 3).
 */
function wallToInstant(zone: IANAZone, wallMs: number): number {
  // Any instant showing wallMs lies within 14 h of it, so the offsets a day either side bracket
  // every candidate, given at most one transition in that window: a scan of every zone, 1970–2100
  // (tzdb 2025c), found no two transitions within two days of each other.
  const before = offsetMs(zone, wallMs - DAY_MS);
  const after = offsetMs(zone, wallMs + DAY_MS);
  // No transition in the window (nearly always): the one candidate is the answer. Offset lookups
  // go through Intl and dominate the cost, so skip the checks.
  if (before === after) return wallMs - before;
  const earlier = wallMs - Math.max(before, after);
  const later = wallMs - Math.min(before, after);
  if (earlier + offsetMs(zone, earlier) === wallMs) return earlier;
  if (later + offsetMs(zone, later) === wallMs) return later;
  // In a gap: the clock jumped from `before` to `after`; read the wall time with the offset in
  // force before the jump, which lands it the gap's length past the scheduled time.
  return wallMs - before;
}

function startMs(c: Compiled, n: number): number {
  return n === 0 ? c.anchorMs : wallToInstant(c.zone, scheduledWall(c, n).toMillis());
}

function indexAt(c: Compiled, nowMs: number): number {
  if (!Number.isFinite(nowMs)) throw new RangeError(`invalid instant: ${nowMs}`);
  if (nowMs < c.anchorMs) return -1;
  let n = Math.max(0, estimateIndex(c, nowMs));
  // The estimate is off by at most a period or two (DST, month lengths); walk to the exact one.
  while (n > 0 && startMs(c, n) > nowMs) n -= 1;
  while (startMs(c, n + 1) <= nowMs) n += 1;
  return n;
}

/** Counts whole intervals between the anchor and `nowMs` on the wall clock. */
function estimateIndex(c: Compiled, nowMs: number): number {
  // The anchor's offset instead of now's: an estimate needs no precision, and it saves a lookup.
  const nowWall = DateTime.fromMillis(nowMs + c.anchorWall.toMillis() - c.anchorMs, {
    zone: 'utc',
  });
  const a = c.anchorWall;
  switch (c.interval) {
    case 'day':
      return Math.floor((nowWall.toMillis() - a.toMillis()) / (DAY_MS * c.count));
    case 'week':
      return Math.floor((nowWall.toMillis() - a.toMillis()) / (7 * DAY_MS * c.count));
    case 'month':
      return Math.floor(((nowWall.year - a.year) * 12 + nowWall.month - a.month) / c.count);
    case 'year':
      return Math.floor((nowWall.year - a.year) / c.count);
  }
}

/**
 * Epoch ms at which period `n` (n >= 0) starts, by the rules in this file's header: the anchor's
 * local date-time plus `n * intervalCount` units in `schedule.timezone`, keeping the wall-clock
 * time; a non-existent local time moves forward by the gap, an ambiguous one takes the earlier
 * instant; `periodStart(s, 0)` is the anchor instant.
 */
export function periodStart(schedule: Schedule, n: number): number {
  checkIndex(n);
  return startMs(compile(schedule), n);
}

/** Period `n` as `[start, end)` with `end = periodStart(n + 1)`; empty only for a skipped day. */
export function period(schedule: Schedule, n: number): BillingPeriod {
  checkIndex(n);
  const c = compile(schedule);
  return { index: n, start: startMs(c, n), end: startMs(c, n + 1) };
}

/**
 * Index of the period containing `nowMs` (`start <= nowMs < end`), or -1 before the anchor.
 * Estimates from the wall-clock distance and corrects by a step or two, so it costs the same for
 * period 5 as for period 50 000. Never returns an empty period.
 */
export function periodIndexAt(schedule: Schedule, nowMs: number): number {
  return indexAt(compile(schedule), nowMs);
}

/** The unit two intervals are both counted in: months (month, year) or days (day, week). */
const COMMON_UNIT = {
  day: { unit: 'days', per: 1 },
  week: { unit: 'days', per: 7 },
  month: { unit: 'months', per: 1 },
  year: { unit: 'months', per: 12 },
} as const satisfies Record<BillingInterval, { unit: 'days' | 'months'; per: number }>;

/** How far back {@link alignedSchedule} looks, in new intervals. */
const ALIGN_MAX_STEPS = 48;

/**
 * A schedule with `next`'s interval and count, in the zone of `cur`, that has `cur`'s period `n`
 * among its starts and keeps `cur`'s day of the month and local time: anchored on the latest
 * earlier date, a whole number of new intervals before period `n`'s scheduled wall-clock time, at
 * which that day exists without clamping and that local time exists (not in a DST gap). So
 * monthly on the 31st whose period `n` starts Feb 28 becomes quarterly anchored Aug 31 of the year
 * before: Feb 28, May 31, Aug 31, Nov 30; and a 02:30 plan whose period `n` fell in a
 * spring-forward gap (03:30) goes on at 02:30. With it, the index of period `n` in it.
 * Undefined when the intervals share no unit (days and months) or no date is found.
 */
export function alignedSchedule(
  cur: Schedule,
  n: number,
  next: Pick<Schedule, 'interval' | 'intervalCount'>,
): { schedule: Schedule; index: number } | undefined {
  checkIndex(n);
  const from = COMMON_UNIT[cur.interval];
  const to = COMMON_UNIT[next.interval];
  if (from.unit !== to.unit) return undefined;
  const c = compile(cur);
  const target = startMs(c, n);
  const a = c.anchorWall;
  for (let k = 1; k <= ALIGN_MAX_STEPS; k++) {
    const steps = n * c.count * from.per - k * next.intervalCount * to.per;
    const wall = a.plus({ [from.unit]: steps });
    // A month that clamped the day (Nov for the 31st) would anchor on the wrong day.
    if (!wall.isValid || (from.unit === 'months' && wall.day !== a.day)) continue;
    const instant = wallToInstant(c.zone, wall.toMillis());
    // In a gap the anchor would be the shifted time, and every later period with it.
    if (instant + offsetMs(c.zone, instant) !== wall.toMillis()) continue;
    const anchor = DateTime.fromMillis(instant, { zone: c.zone }).toISO({
      suppressMilliseconds: true,
    });
    if (anchor === null) continue;
    const schedule: Schedule = { ...next, anchor, timezone: cur.timezone };
    const index = periodIndexAt(schedule, target);
    if (index >= 0 && periodStart(schedule, index) === target) return { schedule, index };
  }
  return undefined;
}

/**
 * Periods due for billing: indexes from `fromIndex` (the first one not yet billed) whose start is
 * at or before `nowMs`, in order, at most `max` of them. After downtime this returns each missed
 * period once; the cap lets the caller bill a long backlog in bounded batches and call again.
 * Empty periods (a skipped calendar day) are left out: they bill nothing.
 */
export function duePeriods(
  schedule: Schedule,
  opts: { fromIndex: number; nowMs: number; max: number },
): number[] {
  const { fromIndex, nowMs, max } = opts;
  checkIndex(fromIndex);
  if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`invalid max: ${max}`);
  const c = compile(schedule);
  const last = indexAt(c, nowMs);
  const due: number[] = [];
  if (fromIndex > last || max === 0) return due;
  let start = startMs(c, fromIndex);
  for (let n = fromIndex; n <= last && due.length < max; n += 1) {
    const end = startMs(c, n + 1);
    if (end > start) due.push(n);
    start = end;
  }
  return due;
}

/**
 * `yyyymmdd` of period `n`'s scheduled start date in the subscription's zone, for intent keys
 * `sub_<id>_<yyyymmdd>`.
 *
 * It is the scheduled wall-clock date (rule 1), which is the local date of `periodStart(s, n)`
 * except when the scheduled time fell in a gap that crossed midnight (a skipped day), where the
 * instant lands on the next date. Using the scheduled date is what makes keys unique: for
 * intervals of a day or more, scheduled dates strictly increase with `n` — day and week steps
 * add whole days to a DST-free calendar; month steps give a different (year, month) each time,
 * whatever the clamped day; year steps a different year. The local date of the instant carries
 * no such guarantee (rule 6 would give the skipped day's period the next day's date), and two
 * periods sharing a key would charge one and silently drop the other.
 */
export function periodStartYmd(schedule: Schedule, n: number): string {
  checkIndex(n);
  const wall = scheduledWall(compile(schedule), n);
  if (wall.year < 0 || wall.year > 9999) throw new RangeError(`period ${n} is beyond year 9999`);
  return wall.toFormat('yyyyMMdd');
}

/**
 * When dunning retry `step` (0-based) is due: `failedAtMs + scheduleMs[step]`, where each entry is
 * measured from the original failure (docs/product.md §7's `1d,3d,5d,7d` are 1, 3, 5 and 7 days
 * after it, not cumulative). Undefined once the schedule is exhausted.
 */
export function dunningDueAt(
  failedAtMs: number,
  scheduleMs: readonly number[],
  step: number,
): number | undefined {
  if (!Number.isSafeInteger(step) || step < 0)
    throw new RangeError(`invalid dunning step: ${step}`);
  const delayMs = scheduleMs[step];
  return delayMs === undefined ? undefined : failedAtMs + delayMs;
}
