/**
 * The subscription record (docs/product.md §7, docs/subscriptions.md): its statuses, its stored
 * shape and schema, how one is created, and what a rule's decision is made of. The rules are pure:
 * every function takes `now` and returns the next record plus the events and retries it implies;
 * the store applies them atomically (compare-and-set on a version) and the scheduler enqueues the
 * jobs. Rule 2 is here (`createSubscription`); the others live beside this file: `periods.ts`
 * (rule 1: periods and intent keys), `billing.ts` (rules 3, 4, 7), `outcomes.ts` (rules 5, 6)
 * and `actions.ts` (rule 8), `holds.ts` (rule 9).
 *
 * The rules, in one place:
 *
 * 1. **Periods come from the calendar** (calendar.ts). `nextPeriod` is the first period no
 *    charge has been created for; the intent of period n is `sub_<id>_<periodStartYmd(n)>`.
 * 2. **Creation**: an anchor in the future bills period 0 at the anchor; an anchor already past
 *    bills the period containing the creation instant at once. Earlier periods are never billed:
 *    the subscription did not exist here then.
 * 3. **Billing is claimed, then committed.** A tick claims the due periods (a lease on the record,
 *    compare-and-set), creates their intents, then commits (`nextPeriod` advances). A claim whose
 *    tick died expires and the periods are claimed again; re-creating an intent is a no-op, so a
 *    period is never charged twice.
 * 4. **Catch-up**: after downtime every missed period is billed, oldest first, at most
 *    `catchUpMax` of them; when more were missed, the oldest ones beyond the cap are skipped
 *    (counted in `skippedPeriods`), because a burst of dozens of charges on one card hurts the
 *    merchant more than the old periods are worth.
 * 5. **Success** closes the period's dunning, advances `currentPeriod` (the latest paid period)
 *    and returns a `past_due` subscription to `active` once nothing is owed. Emits
 *    `subscription.renewed`.
 * 6. **Failure** opens (or continues) dunning for that period: `past_due`, a retry due
 *    `DUNNING_SCHEDULE[step]` after the first failure, each retry a new attempt of the same intent.
 *    Exhausted: `canceled`, or (configured `past_due`) the period is written off, the
 *    subscription stays `past_due` and billing goes on. Every step emits an event.
 * 7. **Billing is held while a period is in dunning**: no new period is charged on a card that
 *    is being retried. When the dunning ends in success (or is written off) the held periods are
 *    billed by the next tick as a catch-up, in order.
 * 8. **Pause** stops new periods and pending retries; what is owed stays owed. **Resume**
 *    continues from the period containing the resume instant (billed at once if it started while
 *    paused) and never bills the periods that passed while paused; open dunning continues at its
 *    schedule (a retry that fell due while paused runs at once). **Cancel** stops everything;
 *    a charge already handed to the gateway still completes, and is not retried if it fails.
 * 9. **An unresolved renewal holds billing.** A charge of the subscription whose payment is
 *    `unknown`, `pending`, `requires_action` or `needs_review` may have moved money, or may yet:
 *    no new period is charged on top of it, and no dunning retry opens a new attempt after it
 *    (a retry needs the gateway's own `failed`). The hold is recorded on the charge's entry in
 *    `openCharges` and reported (`subscription.billing_held`); the charge's final outcome lifts it
 *    (`subscription.billing_resumed`) and rules 5 or 6 apply as usual: success bills the held
 *    periods as a catch-up (rule 4), failure starts dunning. `needs_review` holds until an operator
 *    (or a late webhook) settles the payment.
 */
import { z } from 'zod';
import {
  BILLING_INTERVALS,
  MAX_INTERVAL_COUNT,
  periodIndexAt,
  type BillingPeriod,
  type Schedule,
} from './calendar.ts';
import { startOf } from './periods.ts';
import type { BillingEvent } from '../kernel/events.ts';
import { attemptReference, intentKeySchema, type IntentKey } from '../kernel/ids.ts';
import type { IntentState } from '../kernel/intent.ts';
import {
  amountMinorSchema,
  CHARGE_CURRENCIES,
  type AmountMinor,
  type ChargeCurrency,
} from '../kernel/money.ts';

export const SUBSCRIPTION_STATUSES = ['active', 'past_due', 'paused', 'canceled'] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

export const CANCEL_REASONS = ['requested', 'dunning_exhausted'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];

/**
 * Payment states of an unresolved charge (rule 9): money may have moved, or may yet, and the
 * gateway has not said which. A charge in one of them holds the subscription's billing.
 */
export const HOLDING_STATES = [
  'unknown',
  'pending',
  'requires_action',
  'needs_review',
] as const satisfies readonly IntentState[];
export type HoldingState = (typeof HOLDING_STATES)[number];

/** Whether `state` is one of {@link HOLDING_STATES}. */
export function isHoldingState(state: string): state is HoldingState {
  return (HOLDING_STATES as readonly string[]).includes(state);
}

/** Who a held charge waits for: the customer (3-D Secure), the gateway, or an operator. */
export function awaitingOf(state: HoldingState): 'customer' | 'gateway' | 'operator' {
  return state === 'requires_action'
    ? 'customer'
    : state === 'needs_review'
      ? 'operator'
      : 'gateway';
}

/** Why a charge holds billing (rule 9): its unresolved state, on which attempt, since when. */
export interface ChargeHold {
  state: HoldingState;
  attempt: number;
  /** When the attempt was first seen unresolved; kept while its state changes (→ needs_review). */
  since: number;
}

/**
 * A billed period whose charge has no final outcome (succeeded or failed) applied yet: added when
 * a tick claims the period, removed when its outcome is applied (rules 5, 6). `hold` is set while
 * the charge is unresolved (rule 9); an entry without one is in flight (queued, submitting).
 */
export interface OpenCharge {
  key: IntentKey;
  period: number;
  hold?: ChargeHold;
}

/** One period whose charge failed and is being retried. */
export interface DunningEntry {
  key: IntentKey;
  period: number;
  /** The attempt that failed last; the retry opens `attempt + 1`. */
  attempt: number;
  /** Index into the dunning schedule of the retry scheduled next. */
  step: number;
  /** The period's first failure: every retry is measured from it. */
  failedAt: number;
  /** When retry `step` is due. */
  dueAt: number;
  reason: string;
}

/** A tick's lease on the periods it is creating charges for. */
export interface BillingClaim {
  token: string;
  /** First claimed period. */
  from: number;
  /** Value of `nextPeriod` once the claim is committed. */
  next: number;
  until: number;
}

/** A subscription as stored. The card token is only ever held sealed (AES-256-GCM). */
export interface Subscription {
  id: string;
  customerEmail: string;
  cardTokenSealed: string;
  amount: AmountMinor;
  currency: ChargeCurrency;
  schedule: Schedule;
  status: SubscriptionStatus;
  metadata: Record<string, string>;
  createdAt: number;
  updatedAt: number;
  /** First period no charge has been created for. */
  nextPeriod: number;
  /** Start of `nextPeriod`, kept so the due index is scored without calendar maths. */
  nextPeriodStart: number;
  /** The latest period paid for. */
  currentPeriod?: BillingPeriod;
  claim?: BillingClaim;
  /** Periods in dunning, oldest first. Billing is held while this is not empty. */
  dunning: DunningEntry[];
  /** Charges with no final outcome applied yet, oldest period first; a `hold` holds billing. */
  openCharges: OpenCharge[];
  /**
   * A successful renewal for which the gateway returned a reusable card authorization: that one
   * exists, not the authorization itself (it stays sealed on the intent, `key`).
   */
  reusableAuthorization?: { key: IntentKey; attempt: number; at: number };
  /** A period's dunning was exhausted and written off (`DUNNING_EXHAUSTED=past_due`). */
  delinquent: boolean;
  pausedAt?: number;
  canceledAt?: number;
  cancelReason?: CancelReason;
  /** Bumped by each resume so retries re-scheduled after a pause get fresh job ids. */
  resumes: number;
  /** Periods never billed because a catch-up exceeded its cap. */
  skippedPeriods: number;
  /** Keyed hash of the creating request, to refuse the same id with a different body. */
  requestHash?: string;
}

const periodSchema = z.object({
  index: z.number().int().min(0),
  start: z.number(),
  end: z.number(),
});

/**
 * The schedule as stored: its shape only. The anchor and zone were validated with
 * `scheduleSchema` when the subscription was created; re-validating them on every read would
 * build an Intl formatter per read (most of a tick's cost), and the calendar refuses a bad one
 * loudly anyway.
 */
const storedScheduleSchema = z.object({
  anchor: z.string().min(1),
  timezone: z.string().min(1),
  interval: z.enum(BILLING_INTERVALS),
  intervalCount: z.number().int().min(1).max(MAX_INTERVAL_COUNT),
});

/** The stored record; a corrupt one fails loudly at the store boundary. */
export const subscriptionSchema = z.object({
  id: z.string().min(1),
  customerEmail: z.string().min(1),
  cardTokenSealed: z.string().min(1),
  amount: amountMinorSchema,
  currency: z.enum(CHARGE_CURRENCIES),
  schedule: storedScheduleSchema,
  status: z.enum(SUBSCRIPTION_STATUSES),
  metadata: z.record(z.string(), z.string()),
  createdAt: z.number(),
  updatedAt: z.number(),
  nextPeriod: z.number().int().min(0),
  nextPeriodStart: z.number(),
  currentPeriod: periodSchema.optional(),
  claim: z
    .object({
      token: z.string(),
      from: z.number().int().min(0),
      next: z.number().int().min(0),
      until: z.number(),
    })
    .optional(),
  dunning: z.array(
    z.object({
      key: intentKeySchema,
      period: z.number().int().min(0),
      attempt: z.number().int().min(1),
      step: z.number().int().min(0),
      failedAt: z.number(),
      dueAt: z.number(),
      reason: z.string(),
    }),
  ),
  // Records written before rule 9 have none.
  openCharges: z
    .array(
      z.object({
        key: intentKeySchema,
        period: z.number().int().min(0),
        hold: z
          .object({
            state: z.enum(HOLDING_STATES),
            attempt: z.number().int().min(1),
            since: z.number(),
          })
          .optional(),
      }),
    )
    .default([]),
  reusableAuthorization: z
    .object({ key: intentKeySchema, attempt: z.number().int().min(1), at: z.number() })
    .optional(),
  delinquent: z.boolean(),
  pausedAt: z.number().optional(),
  canceledAt: z.number().optional(),
  cancelReason: z.enum(CANCEL_REASONS).optional(),
  resumes: z.number().int().min(0),
  skippedPeriods: z.number().int().min(0),
  requestHash: z.string().optional(),
}) satisfies z.ZodType<Subscription>;

/** What a new subscription is made of; validated by the caller (CSV, HTTP). */
export interface NewSubscription {
  id: string;
  customerEmail: string;
  cardTokenSealed: string;
  amount: AmountMinor;
  currency: ChargeCurrency;
  schedule: Schedule;
  metadata: Record<string, string>;
  requestHash?: string;
}

/** A dunning retry to enqueue: a delayed job that opens the next attempt of `key`. */
export interface DunningRetry {
  subscriptionId: string;
  key: IntentKey;
  step: number;
  dueAt: number;
  /** Part of the job id: a retry re-scheduled by a resume must not collide with the old job. */
  resumes: number;
}

/** A decision: the record to store (undefined: nothing changes), events, retries to enqueue. */
export interface Decision {
  next?: Subscription;
  events: BillingEvent[];
  retries: DunningRetry[];
}

/** No change: nothing stored, no events, no retries. */
export const NOTHING: Decision = { events: [], retries: [] };

/** Builds a subscription; see rule 2 in the module docs for where billing starts. */
export function createSubscription(input: NewSubscription, now: number): Subscription {
  const nextPeriod = Math.max(0, periodIndexAt(input.schedule, now));
  return {
    id: input.id,
    customerEmail: input.customerEmail,
    cardTokenSealed: input.cardTokenSealed,
    amount: input.amount,
    currency: input.currency,
    schedule: input.schedule,
    status: 'active',
    metadata: input.metadata,
    createdAt: now,
    updatedAt: now,
    nextPeriod,
    nextPeriodStart: startOf(input.schedule, nextPeriod),
    dunning: [],
    openCharges: [],
    delinquent: false,
    resumes: 0,
    skippedPeriods: 0,
    ...(input.requestHash !== undefined ? { requestHash: input.requestHash } : {}),
  };
}

/** The charge holding the subscription's billing (rule 9): the oldest period held, if any. */
export function billingHold(sub: Subscription): (OpenCharge & { hold: ChargeHold }) | undefined {
  for (const c of sub.openCharges) if (c.hold) return { ...c, hold: c.hold };
  return undefined;
}

/**
 * Whether the tick may bill new periods: active or past_due, no period in dunning (rule 7) and no
 * charge unresolved (rule 9).
 */
export function isBillable(sub: Subscription): boolean {
  return (
    (sub.status === 'active' || sub.status === 'past_due') &&
    sub.dunning.length === 0 &&
    billingHold(sub) === undefined
  );
}

/**
 * Score of the subscription in the due index, or null when it must not be there: the start of
 * the next period, or the end of a claim's lease so a dead tick's claim is picked up again.
 */
export function dueScore(sub: Subscription): number | null {
  if (!isBillable(sub)) return null;
  return sub.claim ? sub.claim.until : sub.nextPeriodStart;
}

/**
 * When the next charge of any kind is expected: a dunning retry while one is open, else the next
 * period's start; null when paused or canceled, or while an unresolved charge holds billing (what
 * comes next depends on its outcome).
 */
export function nextChargeAt(sub: Subscription): number | null {
  if (sub.status === 'paused' || sub.status === 'canceled') return null;
  if (billingHold(sub) !== undefined) return null;
  if (sub.dunning.length > 0) return Math.min(...sub.dunning.map((d) => d.dueAt));
  return sub.nextPeriodStart;
}

/** A subscription event; its id is deterministic for the fact it reports. */
export function subscriptionEvent(
  id: string,
  type: BillingEvent['type'],
  now: number,
  data: Record<string, unknown>,
): BillingEvent {
  return { id, type, at: now, data };
}

/** `subscription.canceled`, once per subscription whatever canceled it. */
export function canceledEvent(
  sub: Subscription,
  now: number,
  extra: Record<string, unknown>,
): BillingEvent {
  return subscriptionEvent(`evt_sub_${sub.id}_canceled`, 'subscription.canceled', now, {
    subscriptionId: sub.id,
    status: 'canceled',
    ...extra,
  });
}

/** The retry job of a dunning entry, at the record's resume count. */
export function retryOf(sub: Subscription, d: DunningEntry): DunningRetry {
  return { subscriptionId: sub.id, key: d.key, step: d.step, dueAt: d.dueAt, resumes: sub.resumes };
}

/** The attempt reference of a held charge (`<key>_<attempt>`), as payment events name it. */
export function heldReference(c: OpenCharge & { hold: ChargeHold }): string {
  return attemptReference(c.key, c.hold.attempt);
}
