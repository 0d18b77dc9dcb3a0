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
 *    period is never charged twice. The claim is the point after which the periods' charges are
 *    being created: an action or change that finds one finishes it first (in-flight.ts), so
 *    nothing is charged after an action answered, and always with the terms accepted before.
 * 4. **Catch-up**: after downtime every missed period is billed, oldest first, at most
 *    `catchUpMax` of them; when more were missed, the oldest ones beyond the cap are skipped
 *    (counted in `skippedPeriods`), because a burst of dozens of charges on one card hurts the
 *    merchant more than the old periods are worth.
 * 5. **Success** closes the period's dunning, advances `currentPeriod` (the latest paid period)
 *    and returns a `past_due` subscription to `active` once nothing is owed. Emits
 *    `subscription.renewed` with the amount and currency the charge was made for (its intent's,
 *    which a later change of the subscription's amount does not touch).
 * 6. **Failure** opens (or continues) dunning for that period: `past_due`, a retry due
 *    `DUNNING_SCHEDULE[step]` after the first failure and never sooner than its gap after the
 *    failure before it (outcomes.ts `retryDueAt`), each retry a new attempt of the same intent.
 *    Exhausted: `canceled`, or (configured `past_due`) the period is written off, the
 *    subscription stays `past_due` and billing goes on. Every step emits an event. A paid or
 *    written-off charge is remembered (`settled`), so an outcome delivered again after it (a
 *    stream entry applied but not acknowledged) changes nothing: no dunning reopened on a period
 *    already written off, no second event.
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
 * 10. **Trials** (lifecycle.ts): with `trial_end`, nothing is billed before it and period 0
 *    starts at it (the schedule's anchor is the trial's end); `subscription.trial_will_end` is
 *    due TRIAL_WILL_END_NOTICE before it.
 * 11. **Changes** (changes.ts) apply to periods not yet billed, never to a charge already
 *    created: amount and card from the next charge (a dunning retry's new attempt takes the new
 *    card; a retry of an existing attempt keeps everything, its reference first); currency only
 *    while no charge is open; interval, interval_count and anchor from the next period (a new
 *    schedule segment, periods.ts). No proration.
 * 12. **Scheduled actions** (lifecycle.ts), run by the tick when due: a pause's `resume_at`
 *    resumes it (as rule 8 at that instant); `cancel_at_period_end` bills nothing more and
 *    cancels at the start of the first unbilled period, the end of the one paid for.
 */
import { z } from 'zod';
import {
  BILLING_INTERVALS,
  MAX_INTERVAL_COUNT,
  periodIndexAt,
  type BillingPeriod,
  type Schedule,
} from './calendar.ts';
import {
  claimSchema,
  dunningEntrySchema,
  openChargeSchema,
  settledChargeSchema,
  trialSchema,
  type BillingClaim,
  type ChargeHold,
  type DunningEntry,
  type OpenCharge,
  type SettledCharge,
  type Trial,
} from './entries.ts';
import { startOf, type PastSegment, type SegmentStart } from './periods.ts';
import type { BillingEvent } from '../kernel/events.ts';
import { attemptReference, intentKeySchema, type IntentKey } from '../kernel/ids.ts';
import {
  amountMinorSchema,
  CHARGE_CURRENCIES,
  type AmountMinor,
  type ChargeCurrency,
} from '../kernel/money.ts';

export {
  awaitingOf,
  HOLDING_STATES,
  isHoldingState,
  type BillingClaim,
  type ChargeHold,
  type DunningEntry,
  type HoldingState,
  type OpenCharge,
  type SettledCharge,
  type Trial,
} from './entries.ts';

export const SUBSCRIPTION_STATUSES = ['active', 'past_due', 'paused', 'canceled'] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

export const CANCEL_REASONS = ['requested', 'dunning_exhausted', 'test_clock_deleted'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];

/** A subscription as stored. The card token is only ever held sealed (AES-256-GCM). */
export interface Subscription {
  id: string;
  customerEmail: string;
  cardTokenSealed: string;
  amount: AmountMinor;
  currency: ChargeCurrency;
  /** The current schedule; `segment` says from which period (rule 11, periods.ts). */
  schedule: Schedule;
  segment?: SegmentStart;
  /** Schedules before the current one, oldest first, for the periods billed under them. */
  pastSegments?: PastSegment[];
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
   * The last charges whose final outcome was applied (paid or written off; outcomes.ts
   * `MAX_SETTLED`), oldest first: a redelivered outcome of one of them changes nothing.
   */
  settled?: SettledCharge[];
  /**
   * A successful renewal for which the gateway returned a reusable card authorization: that one
   * exists, not the authorization itself (it stays sealed on the intent, `key`).
   */
  reusableAuthorization?: { key: IntentKey; attempt: number; at: number };
  /** A period's dunning was exhausted and written off (`DUNNING_EXHAUSTED=past_due`). */
  delinquent: boolean;
  /** A free trial (rule 10). */
  trial?: Trial;
  /** Rule 12: bill nothing more; cancel at the start of the first unbilled period. */
  cancelAtPeriodEnd?: boolean;
  pausedAt?: number;
  /** Rule 12: while paused, when it resumes by itself. */
  resumeAt?: number;
  canceledAt?: number;
  cancelReason?: CancelReason;
  /** Bumped by each resume so retries re-scheduled after a pause get fresh job ids. */
  resumes: number;
  /**
   * Set by a resume that re-armed open dunning (rule 8): its retry jobs, under the new `resumes`,
   * are added only after the record is stored, so a process that died in between left none, and
   * nothing else would ever add them (a subscription in dunning is in no due index; resuming it
   * again is a no-op). While set, the record is due at once: the tick adds the retries of the
   * record as it reads it (the same job ids: an existing job absorbs the add) and then clears it
   * (claims.ts).
   */
  rearmDunning?: true;
  /** Bumped by each pause and each change: part of their events' ids. */
  pauses: number;
  updates: number;
  /** Periods never billed because a catch-up exceeded its cap. */
  skippedPeriods: number;
  /** The test clock whose time the subscription lives on (test mode only, test-clocks.ts). */
  testClock?: string;
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

const segmentStartSchema = z.object({
  from: z.number().int().min(0),
  offset: z.number().int().min(0),
});

/** The stored record; a corrupt one fails loudly at the store boundary. */
export const subscriptionSchema = z.object({
  id: z.string().min(1),
  customerEmail: z.string().min(1),
  cardTokenSealed: z.string().min(1),
  amount: amountMinorSchema,
  currency: z.enum(CHARGE_CURRENCIES),
  schedule: storedScheduleSchema,
  segment: segmentStartSchema.optional(),
  pastSegments: z.array(segmentStartSchema.extend({ schedule: storedScheduleSchema })).optional(),
  status: z.enum(SUBSCRIPTION_STATUSES),
  metadata: z.record(z.string(), z.string()),
  createdAt: z.number(),
  updatedAt: z.number(),
  nextPeriod: z.number().int().min(0),
  nextPeriodStart: z.number(),
  currentPeriod: periodSchema.optional(),
  claim: claimSchema.optional(),
  dunning: z.array(dunningEntrySchema),
  // Records written before rule 9 have none.
  openCharges: z.array(openChargeSchema).default([]),
  settled: z.array(settledChargeSchema).optional(),
  reusableAuthorization: z
    .object({ key: intentKeySchema, attempt: z.number().int().min(1), at: z.number() })
    .optional(),
  delinquent: z.boolean(),
  trial: trialSchema.optional(),
  cancelAtPeriodEnd: z.boolean().optional(),
  pausedAt: z.number().optional(),
  resumeAt: z.number().optional(),
  canceledAt: z.number().optional(),
  cancelReason: z.enum(CANCEL_REASONS).optional(),
  resumes: z.number().int().min(0),
  rearmDunning: z.literal(true).optional(),
  // Records written before rules 10-12 have none.
  pauses: z.number().int().min(0).default(0),
  updates: z.number().int().min(0).default(0),
  skippedPeriods: z.number().int().min(0),
  testClock: z.string().min(1).optional(),
  requestHash: z.string().optional(),
}) satisfies z.ZodType<Subscription>;

/** What a new subscription is made of; validated by the caller (CSV, HTTP). */
export interface NewSubscription {
  id: string;
  customerEmail: string;
  cardTokenSealed: string;
  amount: AmountMinor;
  currency: ChargeCurrency;
  /** With a trial, its anchor is the trial's end (rule 10). */
  schedule: Schedule;
  metadata: Record<string, string>;
  /** A trial (rule 10): its end (the anchor instant) and how long before it the notice is due. */
  trial?: { end: number; noticeMs: number };
  testClock?: string;
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
  /** A subscription on a test clock: its clock runs the retry when due (test-clocks.ts). */
  testClock?: string;
}

/** A decision: the record to store (undefined: nothing changes), events, retries to enqueue. */
export interface Decision {
  next?: Subscription;
  events: BillingEvent[];
  retries: DunningRetry[];
}

/** No change: nothing stored, no events, no retries. */
export const NOTHING: Decision = { events: [], retries: [] };

/** Builds a subscription; see rules 2 and 10 in the module docs for where billing starts. */
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
    ...(input.trial !== undefined
      ? {
          trial: {
            end: input.trial.end,
            noticeAt: input.trial.end - input.trial.noticeMs,
            noticed: false,
          },
        }
      : {}),
    resumes: 0,
    pauses: 0,
    updates: 0,
    skippedPeriods: 0,
    ...(input.testClock !== undefined ? { testClock: input.testClock } : {}),
    ...(input.requestHash !== undefined ? { requestHash: input.requestHash } : {}),
  };
}

/** The charge holding the subscription's billing (rule 9): the oldest period held, if any. */
export function billingHold(sub: Subscription): (OpenCharge & { hold: ChargeHold }) | undefined {
  for (const c of sub.openCharges) if (c.hold) return { ...c, hold: c.hold };
  return undefined;
}

/**
 * Whether the tick may bill new periods: active or past_due, not canceling at the period's end
 * (rule 12), no period in dunning (rule 7) and no charge unresolved (rule 9).
 */
export function isBillable(sub: Subscription): boolean {
  return (
    (sub.status === 'active' || sub.status === 'past_due') &&
    sub.cancelAtPeriodEnd !== true &&
    sub.dunning.length === 0 &&
    billingHold(sub) === undefined
  );
}

/**
 * Score of the subscription in the due index (when the tick must look at it next), or null when
 * it must not be there: the earliest of the next period's start (or the end of a claim's lease,
 * so a dead tick's claim is picked up again) while billable, and the scheduled actions (rules 10,
 * 12): the trial notice, a paused subscription's `resumeAt`, the cancel at the period's end; at
 * once while a resume's re-armed retries are to be made sure of (`rearmDunning`).
 */
export function dueScore(sub: Subscription): number | null {
  if (sub.status === 'canceled') return null;
  let score = Infinity;
  if (isBillable(sub)) score = sub.claim ? sub.claim.until : sub.nextPeriodStart;
  if (sub.cancelAtPeriodEnd === true) score = Math.min(score, sub.nextPeriodStart);
  if (sub.trial && !sub.trial.noticed) score = Math.min(score, sub.trial.noticeAt);
  if (sub.status === 'paused' && sub.resumeAt !== undefined) score = Math.min(score, sub.resumeAt);
  // Retries a resume re-armed may not be enqueued yet: the next tick makes sure.
  if (sub.rearmDunning === true) score = Math.min(score, sub.updatedAt);
  return score === Infinity ? null : score;
}

/**
 * When the next charge of any kind is expected: a dunning retry while one is open, else the next
 * period's start; null when paused or canceled, when canceling at the period's end with nothing
 * to retry, or while an unresolved charge holds billing (what comes next depends on its outcome).
 */
export function nextChargeAt(sub: Subscription): number | null {
  if (sub.status === 'paused' || sub.status === 'canceled') return null;
  if (billingHold(sub) !== undefined) return null;
  if (sub.dunning.length > 0) return Math.min(...sub.dunning.map((d) => d.dueAt));
  if (sub.cancelAtPeriodEnd === true) return null;
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
  return {
    subscriptionId: sub.id,
    key: d.key,
    step: d.step,
    dueAt: d.dueAt,
    resumes: sub.resumes,
    ...(sub.testClock !== undefined ? { testClock: sub.testClock } : {}),
  };
}

/** The attempt reference of a held charge (`<key>_<attempt>`), as payment events name it. */
export function heldReference(c: OpenCharge & { hold: ChargeHold }): string {
  return attemptReference(c.key, c.hold.attempt);
}
