/**
 * Changing a subscription (rule 11, record.ts; `PATCH /subscriptions/:id`). Pure. A change never
 * touches a charge already created: an intent keeps the amount, currency and card it was created
 * with, and a retry of an existing attempt keeps its reference. So:
 *
 * - `amount`, `card_token`, `metadata`: from the next charge created. A dunning retry is a new
 *   attempt of an existing charge: it keeps the charge's amount and currency (the money owed for
 *   that period) and, when the card changed, is meant to take the new card (docs/subscriptions.md
 *   says what that needs from payments).
 * - `currency`: only between periods, while no charge of the subscription is open (in flight,
 *   held, in dunning, or being created): a period is owed in one currency. It needs `amount` with
 *   it, so an amount is never reinterpreted in another currency.
 * - `interval`, `interval_count`, `anchor`: from the next period, as a new schedule segment
 *   (periods.ts). The period paid for is never shortened (that would bill time already paid for:
 *   there is no proration), so a new anchor must not be before the start of the first unbilled
 *   period, nor in the past; the time up to it belongs to the period before (longer, unbilled).
 *   Without `anchor`, the new interval starts at that instant, on the old anchor's calendar when
 *   it has a period starting there, else on one anchored earlier that keeps the old anchor's day
 *   of the month and local time (calendar.ts `alignedSchedule`: monthly on the 31st → quarterly
 *   keeps the 31st, a 02:30 plan keeps 02:30), else from that instant (days to months). Not on
 *   a record with a claim (`busy`): the claimed periods' keys are the current schedule's. manage.ts finishes a claim before it applies a change (in-flight.ts), so
 *   a change is refused only if a claim appears under it again and again.
 * - `cancel_at_period_end`: rule 12 (actions.ts `scheduleCancel`); `false` undoes it.
 * - `trial_end`: only during the trial; the anchor moves with it (rule 10), `now` ends it now
 *   ({@link moveTrial}).
 *
 * Every change is one `subscription.updated` with the names of the changed fields and their
 * previous values (never a card token), stored in the same step.
 */
import { DateTime } from 'luxon';
import type { FieldIssue } from '../input/record.ts';
import type { AmountMinor, ChargeCurrency } from '../kernel/money.ts';
import {
  alignedSchedule,
  anchorInZone,
  instantMs,
  periodIndexAt,
  type BillingInterval,
  type Schedule,
} from './calendar.ts';
import { updatedEvent } from './actions.ts';
import { FIRST_SEGMENT, startAt, startOf, type PastSegment, type SegmentStart } from './periods.ts';
import { NOTHING, type Decision, type Subscription } from './record.ts';

/** At most this many earlier schedules are kept (for the keys of periods billed under them). */
export const MAX_PAST_SEGMENTS = 24;

/** A validated `PATCH` (import.ts `parseSubscriptionPatch`), the card token already sealed. */
export interface SubscriptionChanges {
  amount?: AmountMinor;
  currency?: ChargeCurrency;
  cardTokenSealed?: string;
  interval?: BillingInterval;
  intervalCount?: number;
  /** ISO 8601 instant with an offset, already validated. */
  anchor?: string;
  /** Keys to set; `null` removes one. */
  metadata?: Record<string, string | null>;
  cancelAtPeriodEnd?: boolean;
  /** A new end of the trial: an ISO 8601 instant with an offset (validated), or `now`. */
  trialEnd?: string;
}

/** Why a change was refused. */
export type ChangeRefusal =
  | { refused: 'canceled' }
  /** A currency change while a charge is open. */
  | { refused: 'charge_open' }
  /** A schedule change while a tick is creating charges. */
  | { refused: 'busy' }
  | { refused: 'invalid'; issues: FieldIssue[] };

const iso = (ms: number) => new Date(ms).toISOString();

/** Applies `ch` to `sub` at `now`: rule 11. Nothing to change (all equal): no decision. */
export function changeSubscription(
  sub: Subscription,
  ch: SubscriptionChanges,
  now: number,
): Decision | ChangeRefusal {
  if (sub.status === 'canceled') return { refused: 'canceled' };
  let next: Subscription = { ...sub };
  const changes: string[] = [];
  const previous: Record<string, unknown> = {};

  if (ch.currency !== undefined && ch.currency !== sub.currency) {
    if (ch.amount === undefined)
      return invalid('amount', 'amount is required when currency changes');
    const open =
      sub.openCharges.length > 0 ||
      sub.dunning.length > 0 ||
      (sub.claim !== undefined && sub.claim.until > now);
    if (open) return { refused: 'charge_open' };
    next.currency = ch.currency;
    changes.push('currency');
    previous.currency = sub.currency;
  }
  if (ch.amount !== undefined && ch.amount !== sub.amount) {
    next.amount = ch.amount;
    changes.push('amount');
    previous.amount = sub.amount;
  }
  if (ch.cardTokenSealed !== undefined) {
    next.cardTokenSealed = ch.cardTokenSealed;
    changes.push('card_token');
  }
  if (ch.metadata !== undefined) {
    const merged: Record<string, string> = { ...sub.metadata };
    for (const [k, v] of Object.entries(ch.metadata)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    if (!sameRecord(merged, sub.metadata)) {
      next.metadata = merged;
      changes.push('metadata');
      previous.metadata = sub.metadata;
    }
  }
  if (ch.trialEnd !== undefined) {
    const moved = moveTrial(next, ch.trialEnd, ch.anchor, now);
    if ('refused' in moved) return moved;
    if (moved.changed) {
      next = moved.sub;
      changes.push('trial_end', 'anchor');
      Object.assign(previous, moved.previous);
    }
  }
  const rescheduled = reschedule(next, ch, now);
  if ('refused' in rescheduled) return rescheduled;
  if (rescheduled.changed.length > 0) {
    next = rescheduled.sub;
    changes.push(...rescheduled.changed);
    Object.assign(previous, rescheduled.previous);
  }
  if (
    ch.cancelAtPeriodEnd !== undefined &&
    ch.cancelAtPeriodEnd !== (sub.cancelAtPeriodEnd === true)
  ) {
    const { cancelAtPeriodEnd: _old, ...rest } = next;
    next = { ...rest, ...(ch.cancelAtPeriodEnd ? { cancelAtPeriodEnd: true } : {}) };
    changes.push('cancel_at_period_end');
    previous.cancel_at_period_end = !ch.cancelAtPeriodEnd;
  }
  if (changes.length === 0) return NOTHING;
  next = { ...next, updatedAt: now, updates: sub.updates + 1 };
  const extra = next.cancelAtPeriodEnd === true ? { cancelAt: next.nextPeriodStart } : {};
  return { next, events: [updatedEvent(next, now, changes, previous, extra)], retries: [] };
}

function invalid(field: string, message: string): ChangeRefusal {
  return { refused: 'invalid', issues: [{ field, message }] };
}

/**
 * A new end of the trial (`trial_end`): only during the trial (nothing billed yet, its end not
 * reached), never before `now`; `now` ends it now (the first period is billed at the next tick).
 * The trial's end is the schedule's anchor (rule 10), so the anchor moves with it: period 0
 * starts at the new end, nothing was billed under the old one, and no period is skipped or billed
 * twice. The notice keeps its distance from the end (TRIAL_WILL_END_NOTICE as it was at
 * creation); one already sent is sent again for the new end, under a new event id
 * (lifecycle.ts), unless the trial ends now. An `anchor` in the same change must be that instant.
 */
function moveTrial(
  sub: Subscription,
  trialEnd: string,
  anchor: string | undefined,
  now: number,
):
  | { changed: true; sub: Subscription; previous: Record<string, unknown> }
  | { changed: false }
  | ChangeRefusal {
  const trial = sub.trial;
  if (!trial)
    return invalid(
      'trial_end',
      'this subscription has no trial: only the end of a trial that has not ended can change',
    );
  if (sub.nextPeriod !== 0 || now >= trial.end)
    return invalid(
      'trial_end',
      `the trial ended at ${iso(trial.end)}: only the end of a trial that has not ended can change`,
    );
  // `now` to the whole second: the anchor it becomes is shown and sent in events.
  const endMs = trialEnd === 'now' ? Math.floor(now / 1000) * 1000 : instantMs(trialEnd);
  if (!Number.isFinite(endMs))
    return invalid(
      'trial_end',
      'trial_end must be an ISO 8601 instant with Z or an offset, or now',
    );
  if (trialEnd !== 'now' && endMs < now)
    return invalid(
      'trial_end',
      `trial_end must not be before ${iso(now)} (give "now" to end the trial now)`,
    );
  if (anchor !== undefined && instantMs(anchor) !== endMs)
    return invalid(
      'anchor',
      'anchor must be left out with trial_end, or be the same instant: the first period starts when the trial ends',
    );
  if (endMs === trial.end) return { changed: false };
  // A claim on period 0 holds intents under its key, which is the old end's date.
  if (sub.claim !== undefined) return { refused: 'busy' };
  const cur = sub.schedule;
  // Nothing is billed in a trial: the schedule is replaced from period 0.
  const { segment: _seg, ...rest } = sub;
  const rearm = trial.noticed && endMs > now;
  const moved: Subscription = {
    ...rest,
    schedule: { ...cur, anchor: anchorInZone(iso(endMs), cur.timezone) },
    trial: {
      end: endMs,
      noticeAt: endMs - (trial.end - trial.noticeAt),
      noticed: trial.noticed && !rearm,
      ...(rearm
        ? { notices: (trial.notices ?? 0) + 1 }
        : trial.notices !== undefined
          ? { notices: trial.notices }
          : {}),
    },
  };
  moved.nextPeriodStart = startAt(moved, 0);
  return {
    changed: true,
    sub: moved,
    previous: { trial_end: iso(trial.end), anchor: anchorInZone(cur.anchor, cur.timezone) },
  };
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

/**
 * The schedule part of rule 11: the new schedule from the first unbilled period (`nextPeriod`),
 * or nothing when interval, count and anchor are what they are.
 */
function reschedule(
  sub: Subscription,
  ch: SubscriptionChanges,
  now: number,
): { sub: Subscription; changed: string[]; previous: Record<string, unknown> } | ChangeRefusal {
  const cur = sub.schedule;
  const interval = ch.interval ?? cur.interval;
  const intervalCount = ch.intervalCount ?? cur.intervalCount;
  // luxon reads every form the input accepts (`+01`, basic and ordinal dates); Date.parse does
  // not, and a NaN here would pass every check below.
  const anchorMs = ch.anchor === undefined ? undefined : instantMs(ch.anchor);
  if (anchorMs !== undefined && !Number.isFinite(anchorMs))
    return invalid('anchor', 'anchor must be an ISO 8601 instant with Z or an offset');
  const changed: string[] = [];
  if (interval !== cur.interval) changed.push('interval');
  if (intervalCount !== cur.intervalCount) changed.push('interval_count');
  if (anchorMs !== undefined && anchorMs !== instantMs(cur.anchor)) changed.push('anchor');
  if (changed.length === 0) return { sub, changed, previous: {} };
  // Any claim, even one whose lease expired: its periods may have intents under the current
  // schedule's keys, and the tick that finishes it must find the same keys.
  if (sub.claim !== undefined) return { refused: 'busy' };

  // The start of the first unbilled period: the end of the period paid for.
  const boundary = sub.nextPeriodStart;
  let schedule: Schedule;
  let offset = 0;
  if (changed.includes('anchor') && anchorMs !== undefined && ch.anchor !== undefined) {
    if (sub.trial && sub.nextPeriod === 0 && now < sub.trial.end)
      return invalid(
        'anchor',
        'anchor cannot change during a trial: the first period starts at trial_end',
      );
    const min = sub.nextPeriod === 0 ? now : Math.max(now, boundary);
    if (anchorMs < min)
      return invalid(
        'anchor',
        `anchor must not be before ${iso(min)}` +
          (min > now ? ': the period paid for runs until then (there is no proration)' : ''),
      );
    schedule = {
      anchor: anchorInZone(ch.anchor, cur.timezone),
      timezone: cur.timezone,
      interval,
      intervalCount,
    };
  } else {
    // The old anchor's calendar when one of its periods starts at the boundary, else afresh.
    const kept: Schedule = { ...cur, interval, intervalCount };
    const k = periodIndexAt(kept, boundary);
    if (k >= 0 && startOf(kept, k) === boundary) {
      schedule = kept;
      offset = k;
    } else {
      // Else a calendar anchored earlier that keeps the old anchor's day and time, else afresh.
      const n = periodIndexAt(cur, boundary);
      const aligned =
        n >= 0 && startOf(cur, n) === boundary
          ? alignedSchedule(cur, n, { interval, intervalCount })
          : undefined;
      if (aligned) {
        schedule = aligned.schedule;
        offset = aligned.index;
      } else {
        const at = DateTime.fromMillis(boundary, { zone: cur.timezone });
        schedule = { ...kept, anchor: at.toISO({ suppressMilliseconds: true }) ?? cur.anchor };
      }
    }
  }

  const seg = sub.segment ?? FIRST_SEGMENT;
  const segment: SegmentStart = { from: sub.nextPeriod, offset };
  // Nothing billed under the current schedule yet: it is replaced, not kept.
  const past: PastSegment[] =
    sub.nextPeriod === seg.from
      ? [...(sub.pastSegments ?? [])]
      : [...(sub.pastSegments ?? []), { schedule: cur, ...seg }];
  const { pastSegments: _old, ...rest } = sub;
  const moved: Subscription = {
    ...rest,
    schedule,
    segment,
    ...(past.length > 0 ? { pastSegments: past.slice(-MAX_PAST_SEGMENTS) } : {}),
  };
  moved.nextPeriodStart = startAt(moved, moved.nextPeriod);
  return {
    sub: moved,
    changed,
    previous: {
      ...(changed.includes('interval') ? { interval: cur.interval } : {}),
      ...(changed.includes('interval_count') ? { interval_count: cur.intervalCount } : {}),
      ...(changed.includes('anchor') ? { anchor: anchorInZone(cur.anchor, cur.timezone) } : {}),
    },
  };
}
