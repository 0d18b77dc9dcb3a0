/** Management rules (rule 8, record.ts): pause, resume and cancel. Pure. */
import { periodIndexAt } from './calendar.ts';
import { startOf } from './periods.ts';
import { canceledEvent, NOTHING, retryOf, type Decision, type Subscription } from './record.ts';

/** Why a management action was refused. */
export type ActionRefusal = { refused: 'canceled' };

/** Rule 8: pause. Pausing a paused subscription changes nothing; a canceled one is refused. */
export function pauseSubscription(sub: Subscription, now: number): Decision | ActionRefusal {
  if (sub.status === 'canceled') return { refused: 'canceled' };
  if (sub.status === 'paused') return NOTHING;
  return {
    next: { ...sub, updatedAt: now, status: 'paused', pausedAt: now },
    events: [],
    retries: [],
  };
}

/**
 * Rule 8: resume. Billing continues from the period containing `now` (billed at once when it
 * started during the pause); open dunning continues, its overdue retries at once. A hold (rule 9)
 * outlives the pause: it is about a payment, not about the subscription's wishes.
 */
export function resumeSubscription(sub: Subscription, now: number): Decision | ActionRefusal {
  if (sub.status === 'canceled') return { refused: 'canceled' };
  if (sub.status !== 'paused') return NOTHING;
  const current = periodIndexAt(sub.schedule, now);
  const nextPeriod = Math.max(sub.nextPeriod, current);
  const { pausedAt: _resumed, ...rest } = sub;
  const next: Subscription = {
    ...rest,
    updatedAt: now,
    status: sub.dunning.length > 0 || sub.delinquent ? 'past_due' : 'active',
    nextPeriod,
    nextPeriodStart: startOf(sub.schedule, nextPeriod),
    resumes: sub.resumes + 1,
  };
  return { next, events: [], retries: next.dunning.map((d) => retryOf(next, d)) };
}

/**
 * Rule 8: cancel. Idempotent; emits `subscription.canceled` once. Open charges are forgotten with
 * the rest: nothing more is billed, so nothing is held (a charge in flight still completes and its
 * `payment.*` event records it).
 */
export function cancelSubscription(sub: Subscription, now: number): Decision {
  if (sub.status === 'canceled') return NOTHING;
  const { claim: _dropped, ...rest } = sub;
  const next: Subscription = {
    ...rest,
    updatedAt: now,
    status: 'canceled',
    canceledAt: now,
    cancelReason: 'requested',
    dunning: [],
    openCharges: [],
  };
  return { next, events: [canceledEvent(sub, now, { reason: 'requested' })], retries: [] };
}

/** Whether a management decision was refused. */
export function isRefusal(d: Decision | ActionRefusal): d is ActionRefusal {
  return 'refused' in d;
}
