/**
 * What a subscription record carries besides its terms (record.ts): the charges it has open and
 * their holds (rule 9), the periods in dunning (rule 6), a tick's claim (rule 3) and a trial
 * (rule 10), each with the schema it is stored under. Types and constants only, so record.ts and
 * the rules beside it share them without importing each other.
 */
import { z } from 'zod';
import { intentKeySchema, type IntentKey } from '../kernel/ids.ts';
import type { IntentState } from '../kernel/intent.ts';

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
  /** The period's first failure: the nominal retry times are measured from it. */
  failedAt: number;
  /**
   * When retry `step` is due: its nominal time, and never sooner than its gap after the failure
   * of the attempt before it (rule 6).
   */
  dueAt: number;
  reason: string;
  /**
   * Set by the dunning job, compare-and-set, just before it opens this attempt (`attempt + 1`):
   * from then on the retry's charge is being created. A pause, cancel or change that finds it
   * opens (or finds opened) that attempt first, with the record's card, and clears it, so no
   * retry is created after the action answered (manage.ts, in-flight.ts).
   */
  opening?: number;
}

/**
 * A charge whose final outcome was applied (rules 5, 6): paid, or written off (its last attempt
 * failed and no retry follows: `DUNNING_EXHAUSTED=past_due`, or a failure a person forced). A
 * later report about the same charge at or before `attempt` is a replay and changes nothing.
 */
export interface SettledCharge {
  key: IntentKey;
  period: number;
  /** The attempt whose outcome settled it. */
  attempt: number;
  outcome: 'paid' | 'written_off';
}

/** A tick's lease on the periods it is creating charges for. */
export interface BillingClaim {
  token: string;
  /** First claimed period. */
  from: number;
  /** Value of `nextPeriod` once the claim is committed. */
  next: number;
  until: number;
  /**
   * The periods claimed (their intents are being created) and how many were skipped over the
   * catch-up cap: what finishing the claim creates and counts (in-flight.ts). Claims stored
   * before they were recorded have neither: their periods are the open charges in
   * `[from, next)`.
   */
  periods?: number[];
  skipped?: number;
}

/** A free trial (rule 10): nothing is billed before `end`, where period 0 starts. */
export interface Trial {
  end: number;
  /** When `subscription.trial_will_end` is due (TRIAL_WILL_END_NOTICE before `end`). */
  noticeAt: number;
  /** Whether the notice was handled (sent, or passed over because the trial had ended). */
  noticed: boolean;
  /**
   * Notices sent for earlier ends of the trial (a `PATCH` of `trial_end` after the notice re-arms
   * it, changes.ts): the next one's event id is numbered after them. Absent: none.
   */
  notices?: number;
}

export const openChargeSchema = z.object({
  key: intentKeySchema,
  period: z.number().int().min(0),
  hold: z
    .object({
      state: z.enum(HOLDING_STATES),
      attempt: z.number().int().min(1),
      since: z.number(),
    })
    .optional(),
});

export const dunningEntrySchema = z.object({
  key: intentKeySchema,
  period: z.number().int().min(0),
  attempt: z.number().int().min(1),
  step: z.number().int().min(0),
  failedAt: z.number(),
  dueAt: z.number(),
  reason: z.string(),
  opening: z.number().int().min(2).optional(),
});

export const settledChargeSchema = z.object({
  key: intentKeySchema,
  period: z.number().int().min(0),
  attempt: z.number().int().min(1),
  outcome: z.enum(['paid', 'written_off']),
});

export const claimSchema = z.object({
  token: z.string(),
  from: z.number().int().min(0),
  next: z.number().int().min(0),
  until: z.number(),
  periods: z.array(z.number().int().min(0)).optional(),
  skipped: z.number().int().min(0).optional(),
});

export const trialSchema = z.object({
  end: z.number(),
  noticeAt: z.number(),
  noticed: z.boolean(),
  notices: z.number().int().min(1).optional(),
});
