/**
 * Management rules (rules 8 and 12, record.ts): pause (optionally until a `resume_at`), resume,
 * cancel (at once, or at the end of the period paid for). Pure. Each change carries its event
 * (`subscription.paused`, `.resumed`, `.canceled`, `.updated`), stored in the same step.
 */
import type { FieldIssue } from '../input/record.ts';
import { indexAt, startAt } from './periods.ts';
import {
  canceledEvent,
  NOTHING,
  retryOf,
  subscriptionEvent,
  type CancelReason,
  type Decision,
  type Subscription,
} from './record.ts';

/**
 * Why a management action was refused: the subscription is canceled, paused (a retry), has no
 * failed renewal to retry, or the input is wrong.
 */
export type ActionRefusal =
  | { refused: 'canceled' }
  | { refused: 'paused' }
  | { refused: 'nothing_to_retry' }
  | { refused: 'invalid'; issues: FieldIssue[] };

const iso = (ms: number) => new Date(ms).toISOString();

/** `subscription.updated`: which fields changed and what they were (never a card token). */
export function updatedEvent(
  next: Subscription,
  now: number,
  changes: readonly string[],
  previous: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): ReturnType<typeof subscriptionEvent> {
  return subscriptionEvent(
    `evt_sub_${next.id}_updated_${next.updates}`,
    'subscription.updated',
    now,
    { subscriptionId: next.id, status: next.status, changes, previous, ...extra },
  );
}

/**
 * Rule 8 (and 12): pause, until `resumeAt` when given. Pausing a paused subscription changes
 * nothing unless `resumeAt` is given: a time replaces its scheduled resume, `null` clears it
 * (`subscription.updated`). A canceled one is refused; `resumeAt` must be after `now`.
 */
export function pauseSubscription(
  sub: Subscription,
  now: number,
  opts: { resumeAt?: number | null } = {},
): Decision | ActionRefusal {
  if (sub.status === 'canceled') return { refused: 'canceled' };
  const resumeAt = opts.resumeAt ?? undefined;
  if (resumeAt !== undefined && resumeAt <= now)
    return {
      refused: 'invalid',
      issues: [{ field: 'resume_at', message: `resume_at must be after ${iso(now)}` }],
    };
  const { resumeAt: _old, ...rest } = sub;
  if (sub.status === 'paused') {
    if (opts.resumeAt === undefined || resumeAt === sub.resumeAt) return NOTHING;
    const next: Subscription = {
      ...rest,
      updatedAt: now,
      updates: sub.updates + 1,
      ...(resumeAt !== undefined ? { resumeAt } : {}),
    };
    return {
      next,
      events: [updatedEvent(next, now, ['resume_at'], { resume_at: sub.resumeAt ?? null })],
      retries: [],
    };
  }
  const next: Subscription = {
    ...rest,
    updatedAt: now,
    status: 'paused',
    pausedAt: now,
    pauses: sub.pauses + 1,
    ...(resumeAt !== undefined ? { resumeAt } : {}),
  };
  const event = subscriptionEvent(
    `evt_sub_${sub.id}_paused_${next.pauses}`,
    'subscription.paused',
    now,
    {
      subscriptionId: sub.id,
      status: 'paused',
      previousStatus: sub.status,
      pausedAt: now,
      resumeAt: resumeAt ?? null,
    },
  );
  return { next, events: [event], retries: [] };
}

/**
 * Rule 8: resume, as of `at` (now, or a pause's `resumeAt` when the tick resumes it, rule 12).
 * Billing continues from the period containing `at` (billed at once when it started during the
 * pause); open dunning continues, its overdue retry at once. A hold (rule 9) outlives the pause:
 * it is about a payment, not about the subscription's wishes.
 */
export function resumeSubscription(
  sub: Subscription,
  at: number,
  how: 'requested' | 'scheduled' = 'requested',
): Decision | ActionRefusal {
  if (sub.status === 'canceled') return { refused: 'canceled' };
  if (sub.status !== 'paused') return NOTHING;
  const nextPeriod = Math.max(sub.nextPeriod, indexAt(sub, at));
  const { pausedAt: _resumed, resumeAt: _scheduled, ...rest } = sub;
  const next: Subscription = {
    ...rest,
    updatedAt: at,
    status: sub.dunning.length > 0 || sub.delinquent ? 'past_due' : 'active',
    nextPeriod,
    nextPeriodStart: startAt(sub, nextPeriod),
    resumes: sub.resumes + 1,
    // Its retries are enqueued after this record is stored: the tick makes sure they were.
    ...(sub.dunning.length > 0 ? { rearmDunning: true as const } : {}),
  };
  const event = subscriptionEvent(
    `evt_sub_${sub.id}_resumed_${next.resumes}`,
    'subscription.resumed',
    at,
    {
      subscriptionId: sub.id,
      status: next.status,
      resumedAt: at,
      scheduled: how === 'scheduled',
      nextPeriodStart: next.nextPeriodStart,
    },
  );
  return { next, events: [event], retries: next.dunning.map((d) => retryOf(next, d)) };
}

/**
 * Rule 8: cancel at once. Idempotent; emits `subscription.canceled` once. Open charges are
 * forgotten with the rest: nothing more is billed, so nothing is held (a charge in flight still
 * completes and its `payment.*` event records it).
 *
 * Rule 12, `atPeriodEnd`: nothing more is billed and the tick cancels it when the period paid
 * for ends (lifecycle.ts); until then it keeps its status, and the change can be undone
 * (changes.ts, `cancel_at_period_end: false`). Emits `subscription.updated`.
 */
export function cancelSubscription(
  sub: Subscription,
  now: number,
  opts: { atPeriodEnd?: boolean } = {},
): Decision {
  if (sub.status === 'canceled') return NOTHING;
  if (opts.atPeriodEnd === true) return scheduleCancel(sub, now, true);
  return cancelNow(sub, now, { atPeriodEnd: false });
}

/** Cancels at `now` (reason `requested` unless said); `extra` goes into `subscription.canceled`. */
export function cancelNow(
  sub: Subscription,
  now: number,
  extra: { atPeriodEnd: boolean },
  reason: CancelReason = 'requested',
): Decision {
  if (sub.status === 'canceled') return NOTHING;
  const { claim: _dropped, cancelAtPeriodEnd: _done, resumeAt: _none, ...rest } = sub;
  const next: Subscription = {
    ...rest,
    updatedAt: now,
    status: 'canceled',
    canceledAt: now,
    cancelReason: reason,
    dunning: [],
    openCharges: [],
  };
  return {
    next,
    events: [canceledEvent(sub, now, { reason, ...extra })],
    retries: [],
  };
}

/** Sets or clears `cancelAtPeriodEnd` (rule 12), with `subscription.updated`; else nothing. */
export function scheduleCancel(sub: Subscription, now: number, on: boolean): Decision {
  if (sub.status === 'canceled' || (sub.cancelAtPeriodEnd === true) === on) return NOTHING;
  const { cancelAtPeriodEnd: _old, ...rest } = sub;
  const next: Subscription = {
    ...rest,
    updatedAt: now,
    updates: sub.updates + 1,
    ...(on ? { cancelAtPeriodEnd: true } : {}),
  };
  return {
    next,
    events: [
      updatedEvent(
        next,
        now,
        ['cancel_at_period_end'],
        { cancel_at_period_end: !on },
        on ? { cancelAt: sub.nextPeriodStart } : {},
      ),
    ],
    retries: [],
  };
}

/** Whether a management decision was refused. */
export function isRefusal(d: Decision | ActionRefusal): d is ActionRefusal {
  return 'refused' in d;
}

/**
 * Retry now (`POST /subscriptions/:id/retry`): each period in dunning whose next retry is still
 * ahead is due `now` instead (a customer gave a new card, say), and its retry job is enqueued at
 * once. The retry itself is the dunning job's, with every check it makes (rule 9, dunning.ts: a
 * new attempt only after the gateway said the previous one failed), so this opens nothing and
 * moves no money by itself; a retry already due or being opened is left as it is (no change).
 * As a resume does, it bumps the resume count, so the jobs get fresh ids (the old delayed ones
 * find their step done or opened and do nothing), and marks the record (`rearmDunning`) so the
 * tick adds them if this process dies before it does. If the retry fails, the next one keeps
 * its gap after it (rule 6). Refused when canceled, paused (resume first) or not in dunning.
 */
export function retryNow(sub: Subscription, now: number): Decision | ActionRefusal {
  if (sub.status === 'canceled') return { refused: 'canceled' };
  if (sub.status === 'paused') return { refused: 'paused' };
  if (sub.dunning.length === 0) return { refused: 'nothing_to_retry' };
  const ahead = sub.dunning.filter((d) => d.opening === undefined && d.dueAt > now);
  const first = ahead[0];
  if (first === undefined) return NOTHING;
  const next: Subscription = {
    ...sub,
    updatedAt: now,
    updates: sub.updates + 1,
    resumes: sub.resumes + 1,
    rearmDunning: true,
    dunning: sub.dunning.map((d) => (ahead.includes(d) ? { ...d, dueAt: now } : d)),
  };
  return {
    next,
    events: [
      updatedEvent(next, now, ['retry_at'], { retry_at: iso(first.dueAt) }, { retryAt: now }),
    ],
    retries: next.dunning.map((d) => retryOf(next, d)),
  };
}
