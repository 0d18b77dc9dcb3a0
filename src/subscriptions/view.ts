/**
 * The public view of a subscription (`GET /subscriptions/:id`, `billing subs show --json`): the
 * fields of docs/product.md §7 and those docs/subscriptions.md adds. Never a card token.
 */
import { formatMajor } from '../kernel/money.ts';
import { anchorInZone } from './calendar.ts';
import {
  awaitingOf,
  billingHold,
  heldReference,
  nextChargeAt,
  type Subscription,
  type SubscriptionStatus,
} from './record.ts';

/** The public view: the fields of docs/product.md §7, no card token. */
export interface SubscriptionView {
  id: string;
  customer_email: string;
  amount: string;
  amount_minor: number;
  currency: string;
  interval: string;
  interval_count: number;
  anchor: string;
  timezone: string;
  status: SubscriptionStatus;
  /** The latest period paid for. */
  current_period_start: string | null;
  current_period_end: string | null;
  /**
   * The next charge of any kind: a dunning retry while one is open, else the next period; null
   * while paused, canceled, or held by an unresolved renewal.
   */
  next_charge_at: string | null;
  /**
   * Set while a renewal's payment is unresolved and holds billing (docs/subscriptions.md
   * "Unresolved renewals hold billing"): which charge, its state, and who it waits for
   * (`customer`: a 3-D Secure challenge, whose link is in `payment.requires_action`; `gateway`;
   * `operator`: the payment needs review).
   */
  billing_held: {
    key: string;
    reference: string;
    state: string;
    awaiting: 'customer' | 'gateway' | 'operator';
    since: string;
  } | null;
  /** Start of the first period not yet billed. */
  next_period_start: string;
  metadata: Record<string, string>;
  dunning: { key: string; attempt: number; retry: number; retry_at: string; reason: string }[];
  skipped_periods: number;
  /**
   * A renewal for which the gateway returned a reusable card authorization: that one exists (the
   * authorization stays sealed on that payment; renewals do not use it yet).
   */
  reusable_authorization?: { key: string; recorded_at: string };
  /** The end of the free trial (rule 10), null without one; in trial until then. */
  trial_end: string | null;
  /** Rule 12: canceling when the period paid for ends, at `cancel_at`; undone by PATCH. */
  cancel_at_period_end: boolean;
  cancel_at: string | null;
  /** Rule 12: while paused, when it resumes by itself. */
  resume_at: string | null;
  /** The test clock it lives on (test mode), null on real time. */
  test_clock: string | null;
  created_at: string;
  updated_at: string;
  paused_at?: string;
  canceled_at?: string;
  cancel_reason?: string;
  charges?: { key: string; state: string; attempt: number; reason?: string }[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Builds the public view of a subscription. */
export function toSubscriptionView(sub: Subscription): SubscriptionView {
  const next = nextChargeAt(sub);
  const held = billingHold(sub);
  return {
    id: sub.id,
    customer_email: sub.customerEmail,
    amount: formatMajor(sub.amount),
    amount_minor: sub.amount,
    currency: sub.currency,
    interval: sub.schedule.interval,
    interval_count: sub.schedule.intervalCount,
    anchor: anchorInZone(sub.schedule.anchor, sub.schedule.timezone),
    timezone: sub.schedule.timezone,
    status: sub.status,
    current_period_start: sub.currentPeriod ? iso(sub.currentPeriod.start) : null,
    current_period_end: sub.currentPeriod ? iso(sub.currentPeriod.end) : null,
    next_charge_at: next === null ? null : iso(next),
    next_period_start: iso(sub.nextPeriodStart),
    billing_held: held
      ? {
          key: held.key,
          reference: heldReference(held),
          state: held.hold.state,
          awaiting: awaitingOf(held.hold.state),
          since: iso(held.hold.since),
        }
      : null,
    metadata: sub.metadata,
    dunning: sub.dunning.map((d) => ({
      key: d.key,
      attempt: d.attempt,
      retry: d.step + 1,
      retry_at: iso(d.dueAt),
      reason: d.reason,
    })),
    skipped_periods: sub.skippedPeriods,
    ...(sub.reusableAuthorization !== undefined
      ? {
          reusable_authorization: {
            key: sub.reusableAuthorization.key,
            recorded_at: iso(sub.reusableAuthorization.at),
          },
        }
      : {}),
    trial_end: sub.trial ? iso(sub.trial.end) : null,
    cancel_at_period_end: sub.cancelAtPeriodEnd === true,
    cancel_at:
      sub.cancelAtPeriodEnd === true && sub.status !== 'canceled' ? iso(sub.nextPeriodStart) : null,
    resume_at: sub.resumeAt !== undefined ? iso(sub.resumeAt) : null,
    test_clock: sub.testClock ?? null,
    created_at: iso(sub.createdAt),
    updated_at: iso(sub.updatedAt),
    ...(sub.pausedAt !== undefined ? { paused_at: iso(sub.pausedAt) } : {}),
    ...(sub.canceledAt !== undefined ? { canceled_at: iso(sub.canceledAt) } : {}),
    ...(sub.cancelReason !== undefined ? { cancel_reason: sub.cancelReason } : {}),
  };
}
