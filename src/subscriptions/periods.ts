/**
 * Periods of a subscription and their intent keys (rule 1, record.ts): memoized calendar lookups,
 * the key of period n, and the period a key names.
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

/** Period `n` of the schedule: its index, start and end. */
export function periodOf(s: Schedule, n: number): BillingPeriod {
  return { index: n, start: startOf(s, n), end: startOf(s, n + 1) };
}

/** The intent key of period `n`: `sub_<id>_<scheduled start date in the zone>`. */
/** What the period maths reads of a subscription (record.ts's `Subscription` fits). */
export interface PeriodSource {
  id: string;
  schedule: Schedule;
  nextPeriod: number;
  /** A claim not committed yet: its periods below `next` are billed too. */
  claim?: { next: number };
}

export function periodKey(sub: Pick<PeriodSource, 'id' | 'schedule'>, n: number): IntentKey {
  return subscriptionIntentKey(sub.id, ymdOf(sub.schedule, n));
}

/**
 * The period whose intent key is `key`, from the key's `yyyymmdd`, or undefined when the key is
 * not one of this subscription's periods. Scheduled dates strictly increase with the index
 * (calendar.ts), so billed periods (below `nextPeriod`, or in a claim not committed yet)
 * are found by binary search over memoized dates; anything else by a guess from the date.
 */
export function periodIndexOfKey(sub: PeriodSource, key: string): number | undefined {
  const prefix = `sub_${sub.id}_`;
  const ymd = key.slice(prefix.length);
  if (!key.startsWith(prefix) || !/^\d{8}$/.test(ymd)) return undefined;
  const s = sub.schedule;
  let lo = 0;
  let hi = Math.max(sub.nextPeriod, sub.claim?.next ?? 0) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = ymdOf(s, mid);
    if (at === ymd) return mid;
    if (at < ymd) lo = mid + 1;
    else hi = mid - 1;
  }
  return guessIndex(s, ymd);
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
