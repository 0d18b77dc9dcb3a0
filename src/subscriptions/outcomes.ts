/**
 * Payment outcome rules (rules 5 and 6, record.ts): what a succeeded or failed charge of one of a
 * subscription's periods does to it, and the dunning that follows a failure. A final outcome also
 * closes the charge's open entry and lifts its hold, if it held billing (rule 9, holds.ts). Pure.
 *
 * `failed` here is the gateway's own word: payments publishes `payment.failed` only when Sayswitch
 * said the attempt failed and moved nothing (a payment it cannot settle ends in `needs_review`,
 * which holds instead). That is what makes a retry's new attempt safe (dunning.ts).
 *
 * Every outcome is idempotent, also once its charge is gone from the record: a paid or
 * written-off charge is remembered in `settled` (record.ts), and an outcome of it at or before
 * the attempt that settled it is a replay (a stream entry applied and stored, then delivered
 * again because it was not acknowledged): nothing changes, no event, no retry.
 */
import { OPERATOR_FORCED } from '../kernel/intent.ts';
import { dunningDueAt } from './calendar.ts';
import { closeCharge, resumedEvent } from './holds.ts';
import { periodAt } from './periods.ts';
import {
  canceledEvent,
  NOTHING,
  retryOf,
  subscriptionEvent,
  type Decision,
  type DunningEntry,
  type SettledCharge,
  type Subscription,
  type SubscriptionStatus,
} from './record.ts';
import type { IntentKey } from '../kernel/ids.ts';

/** How failed renewals are retried (config `DUNNING_SCHEDULE`, `DUNNING_EXHAUSTED`). */
export interface DunningPolicy {
  /** Delays after the first failure, not cumulative: `1d,3d,5d,7d`. */
  scheduleMs: readonly number[];
  whenExhausted: 'cancel' | 'past_due';
}

/**
 * When retry `step` is due after the attempt before it failed at `failedNow` (rule 6): at its
 * nominal time (`scheduleMs[step]` after the period's first failure, `firstFailedAt`), and never
 * sooner than its gap after that failure — the gap being the distance between its entry and the
 * one before (`1d,3d,5d,7d`: 1, 2, 2 and 2 days). Normally the nominal time is already later;
 * after downtime (or a pause) the retries keep their spacing from when each previous one
 * actually ran, instead of firing one after the other. Undefined once the schedule is exhausted.
 */
export function retryDueAt(
  firstFailedAt: number,
  failedNow: number,
  scheduleMs: readonly number[],
  step: number,
): number | undefined {
  const nominal = dunningDueAt(firstFailedAt, scheduleMs, step);
  if (nominal === undefined) return undefined;
  const gap = Math.max(0, (scheduleMs[step] ?? 0) - (step > 0 ? (scheduleMs[step - 1] ?? 0) : 0));
  return Math.max(nominal, failedNow + gap);
}

/**
 * How many settled charges a record remembers (`settled`). A redelivered stream entry comes back
 * within about 30 s (XAUTOCLAIM), while settling 24 more charges of one subscription takes at
 * least 24 periods: an entry that old is not redelivered.
 */
export const MAX_SETTLED = 24;

/** The settled charge of `key`, if the record remembers it. */
function settledOf(sub: Subscription, key: string): SettledCharge | undefined {
  return sub.settled?.find((s) => s.key === key);
}

/** `sub.settled` with `charge` recorded (replacing an older entry of its key), bounded. */
function withSettled(sub: Subscription, charge: SettledCharge): SettledCharge[] {
  return [...(sub.settled ?? []).filter((s) => s.key !== charge.key), charge].slice(-MAX_SETTLED);
}

/** A payment outcome of one of the subscription's intents, as read from the events stream. */
export interface ChargeOutcome {
  key: IntentKey;
  period: number;
  attempt: number;
  now: number;
  /** On success: the gateway returned a reusable card authorization (payments keeps it sealed). */
  hasAuthorization?: boolean;
  /**
   * On success: what was charged, the intent's amount (minor units) and currency. A change of
   * the subscription's amount after the charge was created does not touch it (rule 11).
   */
  charged?: { amount: number; currency: string };
}

/** Whether the outcome of `key` at `attempt` reports a charge already settled (a replay). */
function isSettled(sub: Subscription, key: IntentKey, attempt: number): boolean {
  const done = settledOf(sub, key);
  return done !== undefined && done.attempt >= attempt;
}

/** Rule 5: the charge of `outcome.key` succeeded. */
export function onChargeSucceeded(sub: Subscription, outcome: ChargeOutcome): Decision {
  // Canceled: a charge already in flight completed; the books have its payment.succeeded.
  if (sub.status === 'canceled') return NOTHING;
  const { key, now } = outcome;
  if (isSettled(sub, key, outcome.attempt)) return NOTHING;
  const dunning = sub.dunning.filter((d) => d.key !== key);
  const closed = closeCharge(sub, key, outcome.attempt);
  const paid = periodAt(sub, outcome.period);
  const currentPeriod =
    sub.currentPeriod && sub.currentPeriod.index >= paid.index ? sub.currentPeriod : paid;
  const status: SubscriptionStatus =
    sub.status === 'past_due' && dunning.length === 0 ? 'active' : sub.status;
  const next: Subscription = {
    ...sub,
    updatedAt: now,
    status,
    dunning,
    openCharges: closed.openCharges,
    delinquent: false,
    currentPeriod,
    settled: withSettled(sub, {
      key,
      period: paid.index,
      attempt: outcome.attempt,
      outcome: 'paid',
    }),
    ...(outcome.hasAuthorization === true
      ? { reusableAuthorization: { key, attempt: outcome.attempt, at: now } }
      : {}),
  };
  return {
    next,
    events: [
      ...(closed.held ? [resumedEvent(next, closed.held, outcome.attempt, 'succeeded', now)] : []),
      subscriptionEvent(`evt_${key}_renewed`, 'subscription.renewed', now, {
        subscriptionId: sub.id,
        key,
        attempt: outcome.attempt,
        period: paid.index,
        periodStart: paid.start,
        periodEnd: paid.end,
        // What this charge was for, never the subscription's amount now (rule 11).
        amount: outcome.charged?.amount ?? sub.amount,
        currency: outcome.charged?.currency ?? sub.currency,
        status,
      }),
    ],
    retries: [],
  };
}

/** Rule 6: the charge of `outcome.key` failed (final for its attempt). */
export function onChargeFailed(
  sub: Subscription,
  outcome: ChargeOutcome & { reason: string },
  policy: DunningPolicy,
): Decision {
  if (sub.status === 'canceled') return NOTHING;
  const { key, now, attempt } = outcome;
  // Paid or written off already: a replay, even though no dunning entry is left to tell.
  if (isSettled(sub, key, attempt)) return NOTHING;
  const prev = sub.dunning.find((d) => d.key === key);
  if (prev && prev.attempt >= attempt) {
    // A replayed event: nothing new, but make sure the retry it scheduled exists.
    return { events: [], retries: sub.status === 'paused' ? [] : [retryOf(sub, prev)] };
  }
  const step = prev ? prev.step + 1 : 0;
  const failedAt = prev?.failedAt ?? now;
  // A failure a person forced over an unconfirmed gateway is no proof that nothing moved: no new
  // attempt (a new reference) for this money, and no cancel for it either — the period is
  // written off as when retries run out under `past_due`.
  const forced = outcome.reason === OPERATOR_FORCED;
  const dueAt = forced ? undefined : retryDueAt(failedAt, now, policy.scheduleMs, step);
  const others = sub.dunning.filter((d) => d.key !== key);
  const closed = closeCharge(sub, key, attempt);
  const resumed = (next: Subscription) =>
    closed.held ? [resumedEvent(next, closed.held, attempt, 'failed', now)] : [];
  const base = {
    subscriptionId: sub.id,
    key,
    attempt,
    reason: outcome.reason,
    period: outcome.period,
  };

  if (dueAt !== undefined) {
    const entry: DunningEntry = {
      key,
      period: outcome.period,
      attempt,
      step,
      failedAt,
      dueAt,
      reason: outcome.reason,
    };
    const status: SubscriptionStatus = sub.status === 'paused' ? 'paused' : 'past_due';
    const next: Subscription = {
      ...sub,
      updatedAt: now,
      status,
      dunning: [...others, entry].sort((a, b) => a.period - b.period),
      openCharges: closed.openCharges,
    };
    return {
      next,
      events: [
        ...resumed(next),
        subscriptionEvent(`evt_${key}_${attempt}_past_due`, 'subscription.past_due', now, {
          ...base,
          status,
          retry: step + 1,
          retryAt: dueAt,
          exhausted: false,
        }),
      ],
      retries: status === 'paused' ? [] : [retryOf(next, entry)],
    };
  }

  if (policy.whenExhausted === 'cancel' && !forced) {
    const { claim: _dropped, cancelAtPeriodEnd: _c, resumeAt: _r, ...rest } = sub;
    const next: Subscription = {
      ...rest,
      updatedAt: now,
      status: 'canceled',
      canceledAt: now,
      cancelReason: 'dunning_exhausted',
      dunning: [],
      openCharges: [],
    };
    return {
      next,
      events: [
        ...resumed(next),
        canceledEvent(sub, now, { ...base, reason: 'dunning_exhausted', failure: outcome.reason }),
      ],
      retries: [],
    };
  }
  // Left past_due: the period is written off and billing goes on (rule 6).
  const status: SubscriptionStatus = sub.status === 'paused' ? 'paused' : 'past_due';
  const next: Subscription = {
    ...sub,
    updatedAt: now,
    status,
    dunning: others,
    openCharges: closed.openCharges,
    delinquent: true,
    settled: withSettled(sub, { key, period: outcome.period, attempt, outcome: 'written_off' }),
  };
  return {
    next,
    events: [
      ...resumed(next),
      subscriptionEvent(`evt_${key}_${attempt}_past_due`, 'subscription.past_due', now, {
        ...base,
        status,
        exhausted: true,
      }),
    ],
    retries: [],
  };
}
