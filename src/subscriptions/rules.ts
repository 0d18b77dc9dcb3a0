/**
 * Subscription rules (PRODUCT.md section 7): the record, its statuses, and what billing, payment
 * outcomes, dunning, pause, resume and cancel do to it. Pure: every function takes `now` and
 * returns the next record plus the events and retries it implies; the store applies them
 * atomically (compare-and-set on a version) and the scheduler enqueues the jobs.
 *
 * The rules, in one place:
 *
 * 1. **Periods come from the calendar** (billing-calendar.ts). `nextPeriod` is the first period no
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
 */
import { DateTime } from 'luxon';
import { z } from 'zod';
import {
  BILLING_INTERVALS,
  dunningDueAt,
  MAX_INTERVAL_COUNT,
  periodIndexAt,
  periodStart,
  periodStartYmd,
  type BillingPeriod,
  type Schedule,
} from './calendar.ts';
import type { BillingEvent } from '../kernel/events.ts';
import { intentKeySchema, subscriptionIntentKey, type IntentKey } from '../kernel/ids.ts';
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

/** How failed renewals are retried (config `DUNNING_SCHEDULE`, `DUNNING_EXHAUSTED`). */
export interface DunningPolicy {
  /** Delays after the first failure, not cumulative: `1d,3d,5d,7d`. */
  scheduleMs: readonly number[];
  whenExhausted: 'cancel' | 'past_due';
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

const NOTHING: Decision = { events: [], retries: [] };

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

function periodOf(s: Schedule, n: number): BillingPeriod {
  return { index: n, start: startOf(s, n), end: startOf(s, n + 1) };
}

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
    delinquent: false,
    resumes: 0,
    skippedPeriods: 0,
    ...(input.requestHash !== undefined ? { requestHash: input.requestHash } : {}),
  };
}

/** Whether the tick may bill new periods: active or past_due, and no period in dunning (rule 7). */
export function isBillable(sub: Subscription): boolean {
  return (sub.status === 'active' || sub.status === 'past_due') && sub.dunning.length === 0;
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
 * period's start; null when paused or canceled.
 */
export function nextChargeAt(sub: Subscription): number | null {
  if (sub.status === 'paused' || sub.status === 'canceled') return null;
  if (sub.dunning.length > 0) return Math.min(...sub.dunning.map((d) => d.dueAt));
  return sub.nextPeriodStart;
}

/** The intent key of period `n`: `sub_<id>_<scheduled start date in the zone>`. */
export function periodKey(sub: Pick<Subscription, 'id' | 'schedule'>, n: number): IntentKey {
  return subscriptionIntentKey(sub.id, ymdOf(sub.schedule, n));
}

/**
 * The period whose intent key is `key`, from the key's `yyyymmdd`, or undefined when the key is
 * not one of this subscription's periods. Scheduled dates strictly increase with the index
 * (billing-calendar.ts), so billed periods (below `nextPeriod`, or in a claim not committed yet)
 * are found by binary search over memoized dates; anything else by a guess from the date.
 */
export function periodIndexOfKey(
  sub: Pick<Subscription, 'id' | 'schedule' | 'nextPeriod' | 'claim'>,
  key: string,
): number | undefined {
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

/** What a tick should do with one subscription at `now`. */
export type BillingPlan =
  /** Not billable (paused, canceled, or held by dunning). */
  | { kind: 'idle' }
  /** Another tick holds a live claim. */
  | { kind: 'busy'; until: number }
  /** Nothing due yet. */
  | { kind: 'wait'; nextAt: number }
  /** Bill `periods` (in order); `next` becomes `nextPeriod`; `skipped` were over the cap. */
  | { kind: 'bill'; periods: number[]; skipped: number; next: number };

/** Decides which periods are due at `now` (rules 3, 4, 7). */
export function planBilling(
  sub: Subscription,
  now: number,
  opts: { catchUpMax: number },
): BillingPlan {
  if (!isBillable(sub)) return { kind: 'idle' };
  if (sub.claim && sub.claim.until > now) return { kind: 'busy', until: sub.claim.until };
  if (sub.nextPeriodStart > now) return { kind: 'wait', nextAt: sub.nextPeriodStart };
  const s = sub.schedule;
  const max = Math.max(1, opts.catchUpMax);
  // The last period started by `now`: usually `nextPeriod` itself, a few steps on after a short
  // outage; a long one is located by the calendar in one step instead of walked.
  let last = sub.nextPeriod;
  while (startOf(s, last + 1) <= now) {
    last += 1;
    if (last - sub.nextPeriod > max) {
      last = periodIndexAt(s, now);
      break;
    }
  }
  const from = Math.max(sub.nextPeriod, last - max + 1);
  // duePeriods over memoized starts: an empty period (a calendar day a zone skipped) bills nothing.
  const periods: number[] = [];
  for (let n = from; n <= last; n++) if (startOf(s, n + 1) > startOf(s, n)) periods.push(n);
  return { kind: 'bill', periods, skipped: from - sub.nextPeriod, next: last + 1 };
}

/** Takes the lease for a `bill` plan; the caller stores it with compare-and-set. */
export function claimBilling(
  sub: Subscription,
  plan: Extract<BillingPlan, { kind: 'bill' }>,
  claim: { token: string; now: number; leaseMs: number },
): Subscription {
  return {
    ...sub,
    updatedAt: claim.now,
    claim: {
      token: claim.token,
      from: sub.nextPeriod,
      next: plan.next,
      until: claim.now + claim.leaseMs,
    },
  };
}

/**
 * Commits a claim once its intents exist: `nextPeriod` advances past the billed periods. Returns
 * undefined when the claim is no longer ours (expired and taken over, or the subscription was
 * canceled): the other party's commit covers the same periods.
 */
export function commitBilling(
  sub: Subscription,
  token: string,
  skipped: number,
  now: number,
): Subscription | undefined {
  const claim = sub.claim;
  if (!claim || claim.token !== token) return undefined;
  const next = Math.max(sub.nextPeriod, claim.next);
  const { claim: _done, ...rest } = sub;
  return {
    ...rest,
    updatedAt: now,
    nextPeriod: next,
    nextPeriodStart: startOf(sub.schedule, next),
    skippedPeriods: sub.skippedPeriods + skipped,
  };
}

/** Clears an expired claim that turned out to cover nothing (the due index is then rescored). */
export function releaseClaim(sub: Subscription, now: number): Subscription {
  const { claim: _done, ...rest } = sub;
  return { ...rest, updatedAt: now };
}

function event(
  id: string,
  type: BillingEvent['type'],
  now: number,
  data: Record<string, unknown>,
): BillingEvent {
  return { id, type, at: now, data };
}

function canceledEvent(sub: Subscription, now: number, extra: Record<string, unknown>) {
  return event(`evt_sub_${sub.id}_canceled`, 'subscription.canceled', now, {
    subscriptionId: sub.id,
    status: 'canceled',
    ...extra,
  });
}

/** A payment outcome of one of the subscription's intents, as read from the events stream. */
export interface ChargeOutcome {
  key: IntentKey;
  period: number;
  attempt: number;
  now: number;
}

/** Rule 5: the charge of `outcome.key` succeeded. */
export function onChargeSucceeded(sub: Subscription, outcome: ChargeOutcome): Decision {
  // Canceled: a charge already in flight completed; the books have its payment.succeeded.
  if (sub.status === 'canceled') return NOTHING;
  const { key, now } = outcome;
  const dunning = sub.dunning.filter((d) => d.key !== key);
  const paid = periodOf(sub.schedule, outcome.period);
  const currentPeriod =
    sub.currentPeriod && sub.currentPeriod.index >= paid.index ? sub.currentPeriod : paid;
  const status: SubscriptionStatus =
    sub.status === 'past_due' && dunning.length === 0 ? 'active' : sub.status;
  const next: Subscription = {
    ...sub,
    updatedAt: now,
    status,
    dunning,
    delinquent: false,
    currentPeriod,
  };
  return {
    next,
    events: [
      event(`evt_${key}_renewed`, 'subscription.renewed', now, {
        subscriptionId: sub.id,
        key,
        attempt: outcome.attempt,
        period: paid.index,
        periodStart: paid.start,
        periodEnd: paid.end,
        amount: sub.amount,
        currency: sub.currency,
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
  const prev = sub.dunning.find((d) => d.key === key);
  if (prev && prev.attempt >= attempt) {
    // A replayed event: nothing new, but make sure the retry it scheduled exists.
    return { events: [], retries: sub.status === 'paused' ? [] : [retryOf(sub, prev)] };
  }
  const step = prev ? prev.step + 1 : 0;
  const failedAt = prev?.failedAt ?? now;
  const dueAt = dunningDueAt(failedAt, policy.scheduleMs, step);
  const others = sub.dunning.filter((d) => d.key !== key);
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
    };
    return {
      next,
      events: [
        event(`evt_${key}_${attempt}_past_due`, 'subscription.past_due', now, {
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

  if (policy.whenExhausted === 'cancel') {
    const { claim: _dropped, ...rest } = sub;
    const next: Subscription = {
      ...rest,
      updatedAt: now,
      status: 'canceled',
      canceledAt: now,
      cancelReason: 'dunning_exhausted',
      dunning: [],
    };
    return {
      next,
      events: [
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
    delinquent: true,
  };
  return {
    next,
    events: [
      event(`evt_${key}_${attempt}_past_due`, 'subscription.past_due', now, {
        ...base,
        status,
        exhausted: true,
      }),
    ],
    retries: [],
  };
}

function retryOf(sub: Subscription, d: DunningEntry): DunningRetry {
  return { subscriptionId: sub.id, key: d.key, step: d.step, dueAt: d.dueAt, resumes: sub.resumes };
}

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
 * started during the pause); open dunning continues, its overdue retries at once.
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

/** Rule 8: cancel. Idempotent; emits `subscription.canceled` once. */
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
  };
  return { next, events: [canceledEvent(sub, now, { reason: 'requested' })], retries: [] };
}

/** Whether a management decision was refused. */
export function isRefusal(d: Decision | ActionRefusal): d is ActionRefusal {
  return 'refused' in d;
}
