/**
 * Scheduled lifecycle actions (rules 10 and 12, record.ts), run by the tick when due (the due
 * index scores them, record.ts `dueScore`): the trial notice, a pause's `resume_at`, and the
 * cancel at the end of the period paid for. Pure.
 *
 * - **Trial notice**: `subscription.trial_will_end` at `trial.noticeAt` (TRIAL_WILL_END_NOTICE
 *   before the trial's end), once per end of the trial (a change of `trial_end` after the notice
 *   re-arms it for the new end, changes.ts). A notice found due only after the trial ended (the scheduler
 *   was down across both) is passed over: telling the customer a trial "will" end that already
 *   did is wrong, and the first charge's own events follow anyway.
 * - **Scheduled resume**: a paused subscription with `resumeAt` resumes as of that instant
 *   (rule 8: billing continues from the period containing it), `subscription.resumed` with
 *   `scheduled: true`.
 * - **Cancel at period end**: once the first unbilled period would start (`nextPeriodStart`), the
 *   subscription is canceled instead (`subscription.canceled`, reason `requested`,
 *   `atPeriodEnd: true`); nothing was billed for that period (`isBillable` is false meanwhile).
 *   A subscription whose paid period already ended (billing held by dunning or a pause) is
 *   canceled at the next tick.
 *
 * When several are due (after downtime, or a clock advanced past them), they apply in the order
 * of their instants, each on the record the previous one left.
 */
import { cancelNow, isRefusal, resumeSubscription } from './actions.ts';
import {
  NOTHING,
  subscriptionEvent,
  type Decision,
  type DunningRetry,
  type Subscription,
} from './record.ts';
import type { BillingEvent } from '../kernel/events.ts';

type Due = { at: number; apply: (sub: Subscription) => Decision };

/** What {@link applyScheduled} leaves for later. */
export interface ScheduledOptions {
  /**
   * Leave a due trial notice unsent: a change of `trial_end` being applied moves it (changes.ts),
   * and sending it first would tell the customer the end that is being replaced.
   */
  skipTrialNotice?: boolean;
}

/** The scheduled actions due at `now` on `sub`, the earliest first. */
function dueActions(sub: Subscription, now: number, opts: ScheduledOptions): Due[] {
  if (sub.status === 'canceled') return [];
  const due: Due[] = [];
  const trial = sub.trial;
  if (trial && !trial.noticed && trial.noticeAt <= now && opts.skipTrialNotice !== true)
    due.push({ at: trial.noticeAt, apply: (s) => trialNotice(s, now) });
  if (sub.status === 'paused' && sub.resumeAt !== undefined && sub.resumeAt <= now) {
    const at = sub.resumeAt;
    due.push({
      at,
      apply: (s) => {
        const d = resumeSubscription(s, at, 'scheduled');
        return isRefusal(d) ? NOTHING : d;
      },
    });
  }
  if (sub.cancelAtPeriodEnd === true && sub.nextPeriodStart <= now)
    due.push({ at: sub.nextPeriodStart, apply: (s) => cancelNow(s, now, { atPeriodEnd: true }) });
  return due.sort((a, b) => a.at - b.at);
}

/**
 * The id of a trial's notice: `evt_sub_<id>_trial_will_end`, then `…_2`, `…_3` for the notices of
 * a trial whose end moved after one was sent (changes.ts), so a consumer that keeps event ids
 * does not take a notice of the new end for the old one again.
 */
export function trialNoticeId(subscriptionId: string, earlier: number | undefined): string {
  const base = `evt_sub_${subscriptionId}_trial_will_end`;
  return earlier === undefined || earlier === 0 ? base : `${base}_${earlier + 1}`;
}

function trialNotice(sub: Subscription, now: number): Decision {
  const trial = sub.trial;
  if (!trial || trial.noticed) return NOTHING;
  const next: Subscription = { ...sub, updatedAt: now, trial: { ...trial, noticed: true } };
  if (now >= trial.end) return { next, events: [], retries: [] };
  return {
    next,
    events: [
      subscriptionEvent(trialNoticeId(sub.id, trial.notices), 'subscription.trial_will_end', now, {
        subscriptionId: sub.id,
        status: sub.status,
        trialEnd: trial.end,
        amount: sub.amount,
        currency: sub.currency,
        // What comes at the trial's end: the first charge, unless paused or canceling.
        nextChargeAt:
          sub.status === 'paused' || sub.cancelAtPeriodEnd === true ? null : sub.nextPeriodStart,
      }),
    ],
    retries: [],
  };
}

/**
 * Applies every scheduled action due at `now` (rules 10, 12), in order. `next` is undefined when
 * none was due; the events and retries (a resume re-schedules open dunning) are all of them.
 */
export function applyScheduled(
  sub: Subscription,
  now: number,
  opts: ScheduledOptions = {},
): Decision {
  let cur = sub;
  let changed = false;
  const events: BillingEvent[] = [];
  const retries: DunningRetry[] = [];
  // Each action is done at most once (it clears what made it due), so three rounds suffice;
  // a resume may make the cancel due, hence re-reading what is due after each.
  for (let round = 0; round < 4; round++) {
    const [first] = dueActions(cur, now, opts);
    if (!first) break;
    const d = first.apply(cur);
    if (!d.next) break;
    cur = d.next;
    changed = true;
    events.push(...d.events);
    retries.push(...d.retries);
  }
  if (!changed) return NOTHING;
  // A cancel drops what a resume re-scheduled.
  return { next: cur, events, retries: cur.status === 'canceled' ? [] : retries };
}

/** `subscription.created`, appended with the record (rule 2). */
export function createdEvent(sub: Subscription): BillingEvent {
  return subscriptionEvent(`evt_sub_${sub.id}_created`, 'subscription.created', sub.createdAt, {
    subscriptionId: sub.id,
    status: sub.status,
    amount: sub.amount,
    currency: sub.currency,
    interval: sub.schedule.interval,
    intervalCount: sub.schedule.intervalCount,
    anchor: sub.schedule.anchor,
    timezone: sub.schedule.timezone,
    nextPeriodStart: sub.nextPeriodStart,
    ...(sub.trial ? { trialEnd: sub.trial.end } : {}),
    ...(sub.testClock !== undefined ? { testClock: sub.testClock } : {}),
  });
}
