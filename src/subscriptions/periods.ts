/**
 * Periods of a subscription and their intent keys (rule 1, record.ts): memoized calendar lookups,
 * the key of period n, the period a key names, and the schedule segments a change of interval or
 * anchor leaves behind (rule 11).
 *
 * **Segments.** A subscription's periods are numbered once, 0, 1, 2, … for its whole life (the
 * record's `nextPeriod`, its open charges and dunning entries hold these global indexes). Each
 * period belongs to one schedule: the current one from `segment.from` on, an earlier one
 * (`pastSegments`) before. Global period `n` of a segment is period `n - from + offset` of its
 * schedule, so a new interval may keep the old anchor's calendar (`offset > 0`) or start afresh
 * from a new anchor (`offset = 0`). A period's end is the next period's start, so the last period
 * before a change lasts until the new schedule's first period starts (no proration: it is simply
 * longer or, never, shorter; see changes.ts for why it can only be longer).
 *
 * Keys stay unique across segments: a new segment starts at or after the start of the first
 * unbilled period (changes.ts), whose local date is after every billed period's scheduled date,
 * and within a schedule scheduled dates strictly increase (calendar.ts).
 */
import { DateTime } from 'luxon';
import {
  periodIndexAt,
  periodStart,
  periodStartYmd,
  type BillingPeriod,
  type Schedule,
} from './calendar.ts';
import { subscriptionIntentKey, type IntentKey } from '../kernel/ids.ts';

/**
 * Period starts and dates are pure functions of (schedule, n). The calendar computes each one
 * through Intl offset lookups, about 100 µs a call, and a tick, its commits and the outcomes of
 * its charges ask for the same few periods of a subscription again and again: memoized here.
 * Bounded: the whole memo is dropped when it holds too many schedules.
 */
const MEMO_MAX_SCHEDULES = 50_000;
const memo = new Map<string, { starts: Map<number, number>; ymds: Map<number, string> }>();

function memoOf(s: Schedule) {
  const id = `${s.anchor}|${s.timezone}|${s.interval}|${s.intervalCount}`;
  let m = memo.get(id);
  if (!m) {
    if (memo.size >= MEMO_MAX_SCHEDULES) memo.clear();
    m = { starts: new Map(), ymds: new Map() };
    memo.set(id, m);
  }
  return m;
}

/** `periodStart(s, n)`, memoized. */
export function startOf(s: Schedule, n: number): number {
  const m = memoOf(s);
  let v = m.starts.get(n);
  if (v === undefined) {
    v = periodStart(s, n);
    m.starts.set(n, v);
  }
  return v;
}

/** `periodStartYmd(s, n)`, memoized. */
function ymdOf(s: Schedule, n: number): string {
  const m = memoOf(s);
  let v = m.ymds.get(n);
  if (v === undefined) {
    v = periodStartYmd(s, n);
    m.ymds.set(n, v);
  }
  return v;
}

/** Where a schedule's periods start among the subscription's: global `from` is its `offset`. */
export interface SegmentStart {
  /** Global index of the segment's first period. */
  from: number;
  /** That period's index in the segment's schedule. */
  offset: number;
}

/** A schedule no longer current, and where its periods started. */
export interface PastSegment extends SegmentStart {
  schedule: Schedule;
}

/** The first segment of every subscription: its schedule from period 0. */
export const FIRST_SEGMENT: SegmentStart = { from: 0, offset: 0 };

/** What the period maths reads of a subscription (record.ts's `Subscription` fits). */
export interface PeriodSource {
  id: string;
  /** The current schedule. */
  schedule: Schedule;
  /** Where the current schedule starts (absent: {@link FIRST_SEGMENT}). */
  segment?: SegmentStart;
  /** Earlier schedules, oldest first. */
  pastSegments?: readonly PastSegment[];
  nextPeriod: number;
  /** A claim not committed yet: its periods below `next` are billed too. */
  claim?: { next: number };
}

type Segments = Pick<PeriodSource, 'schedule' | 'segment' | 'pastSegments'>;

/** The schedule and local index of global period `n`. */
function locate(src: Segments, n: number): { schedule: Schedule; local: number } {
  const cur = src.segment ?? FIRST_SEGMENT;
  if (n >= cur.from) return { schedule: src.schedule, local: n - cur.from + cur.offset };
  const past = src.pastSegments ?? [];
  for (let i = past.length - 1; i >= 0; i--) {
    const p = past[i] as PastSegment;
    if (n >= p.from || i === 0)
      return { schedule: p.schedule, local: Math.max(0, n - p.from + p.offset) };
  }
  // Segments older than any kept (changes.ts keeps a bounded number): the current schedule.
  return { schedule: src.schedule, local: Math.max(0, n - cur.from + cur.offset) };
}

/** Start of global period `n` (epoch ms). */
export function startAt(src: Segments, n: number): number {
  const { schedule, local } = locate(src, n);
  return startOf(schedule, local);
}

/** Global period `n`: its index, start and end (the next period's start, whatever its segment). */
export function periodAt(src: Segments, n: number): BillingPeriod {
  return { index: n, start: startAt(src, n), end: startAt(src, n + 1) };
}

/**
 * The global index of the period containing `now` under the current schedule: at least
 * `segment.from - 1` (before the current schedule's first period, the last period of the one
 * before still runs), -1 before period 0.
 */
export function indexAt(src: Segments, now: number): number {
  const cur = src.segment ?? FIRST_SEGMENT;
  const local = periodIndexAt(src.schedule, now);
  return local < cur.offset ? cur.from - 1 : cur.from + local - cur.offset;
}

/** The intent key of global period `n`: `sub_<id>_<scheduled start date in the zone>`. */
export function periodKey(sub: Pick<PeriodSource, 'id'> & Segments, n: number): IntentKey {
  const { schedule, local } = locate(sub, n);
  return subscriptionIntentKey(sub.id, ymdOf(schedule, local));
}

/**
 * The global period whose intent key is `key`, from the key's `yyyymmdd`, or undefined when the
 * key is not one of this subscription's periods. Scheduled dates strictly increase with the index
 * within a schedule (calendar.ts) and from one segment to the next (above): the segment is the
 * newest whose first date is not after the key's; within it, billed periods (below `nextPeriod`,
 * or in a claim not committed yet) are found by binary search over memoized dates, anything else
 * by a guess from the date.
 */
export function periodIndexOfKey(sub: PeriodSource, key: string): number | undefined {
  const prefix = `sub_${sub.id}_`;
  const ymd = key.slice(prefix.length);
  if (!key.startsWith(prefix) || !/^\d{8}$/.test(ymd)) return undefined;
  const cur = sub.segment ?? FIRST_SEGMENT;
  const billedEnd = Math.max(sub.nextPeriod, sub.claim?.next ?? 0);
  const segments: { schedule: Schedule; from: number; offset: number; end: number }[] = [];
  const past = sub.pastSegments ?? [];
  past.forEach((p, i) => segments.push({ ...p, end: (past[i + 1] ?? cur).from }));
  segments.push({ schedule: sub.schedule, ...cur, end: Math.max(billedEnd, cur.from) });
  for (let i = segments.length - 1; i >= 0; i--) {
    const seg = segments[i]!;
    if (i > 0 && ymdOf(seg.schedule, seg.offset) > ymd) continue;
    const found = searchSegment(seg, ymd, i === segments.length - 1);
    return found === undefined ? undefined : seg.from + found - seg.offset;
  }
  return undefined;
}

/** The local index in `seg` whose date is `ymd`; `open`: the current segment, unbounded above. */
function searchSegment(
  seg: { schedule: Schedule; from: number; offset: number; end: number },
  ymd: string,
  open: boolean,
): number | undefined {
  const s = seg.schedule;
  let lo = seg.offset;
  let hi = seg.offset + (seg.end - seg.from) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = ymdOf(s, mid);
    if (at === ymd) return mid;
    if (at < ymd) lo = mid + 1;
    else hi = mid - 1;
  }
  if (!open) return undefined;
  const guess = guessIndex(s, ymd);
  return guess !== undefined && guess >= seg.offset ? guess : undefined;
}

function guessIndex(s: Schedule, ymd: string): number | undefined {
  const anchor = DateTime.fromISO(s.anchor, { setZone: true }).setZone(s.timezone);
  const guess = DateTime.fromObject(
    {
      year: Number(ymd.slice(0, 4)),
      month: Number(ymd.slice(4, 6)),
      day: Number(ymd.slice(6, 8)),
      hour: anchor.hour,
      minute: anchor.minute,
      second: anchor.second,
    },
    { zone: s.timezone },
  );
  if (!guess.isValid) return undefined;
  let n = Math.max(0, periodIndexAt(s, guess.toMillis()));
  // The guess lands in the period or next to it (a gap-shifted start, a skipped day).
  for (let i = 0; i < 3 && n > 0 && ymdOf(s, n) > ymd; i++) n -= 1;
  for (let i = 0; i < 3 && ymdOf(s, n) < ymd; i++) n += 1;
  return ymdOf(s, n) === ymd ? n : undefined;
}
