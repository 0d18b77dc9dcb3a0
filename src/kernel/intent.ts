/**
 * The vocabulary of payment intents: their states and types, which states count as final or
 * settled, failure reasons and origins. Which transitions exist is payments' business:
 * payments/state-machine.ts.
 */
import { z } from 'zod';

export const INTENT_STATES = [
  'queued',
  'submitting',
  'pending',
  /**
   * The gateway asked for the customer (a 3-D Secure challenge at `authorizationUrl`): nothing has
   * moved yet. Checked like `pending`; see payments/state-machine.ts and README "Payments: states
   * and references" for how it ends.
   */
  'requires_action',
  'unknown',
  'succeeded',
  'failed',
  'reversed',
  'needs_review',
] as const;
export type IntentState = (typeof INTENT_STATES)[number];
export const intentStateSchema = z.enum(INTENT_STATES);

/**
 * `refund`: money given back on a succeeded charge, an intent of its own (payments/refunds/,
 * docs/refunds.md) under the same state machine, keyed by derivation from the charge
 * (kernel/ids.ts `refundIntentKey`).
 */
export const INTENT_TYPES = ['charge', 'payout', 'refund'] as const;
/** What an instruction (a POST /payments body, a batch row, a renewal) creates: no refunds. */
export const INSTRUCTION_TYPES = ['charge', 'payout'] as const satisfies readonly IntentType[];
export type InstructionType = (typeof INSTRUCTION_TYPES)[number];
export type IntentType = (typeof INTENT_TYPES)[number];

/**
 * Final: the gateway has answered the money question of the intent's current attempt: the money
 * moved (`succeeded`), it did not (`failed`), or it moved and came back (`reversed`).
 */
export const FINAL_STATES = [
  'succeeded',
  'failed',
  'reversed',
] as const satisfies readonly IntentState[];

/**
 * Settled: nothing is in flight for the intent's current attempt: it is final
 * ({@link FINAL_STATES}) or `needs_review` (the reconciler gave up asking; a person resolves it).
 * What may still come is a new fact, not an awaited answer: a late webhook, a payout reversal, a
 * dunning retry opening attempt n+1. A batch completes when every row is settled (the batch
 * tracker's Lua counts rows with it); the demo is done when every payment is.
 */
export const SETTLED_STATES = [
  ...FINAL_STATES,
  'needs_review',
] as const satisfies readonly IntentState[];

/** Whether `state` is one of {@link SETTLED_STATES}. */
export function isSettled(state: IntentState): boolean {
  return (SETTLED_STATES as readonly IntentState[]).includes(state);
}

/** Why a payment failed; the gateway's own words go to `message`. */
export const FAILURE_REASONS = [
  'declined',
  'insufficient_funds',
  'invalid',
  'gateway_rejected',
  'gateway_unavailable',
  'canceled',
  /** The customer did not complete a 3-D Secure challenge within the window. */
  'authentication_required',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/**
 * The reason of a `failed` a person recorded over a gateway that had not said so (payments/
 * resolve.ts, `force`): not the gateway's word that nothing moved, so nothing opens a new reference
 * for that money because of it (subscriptions write the period off instead of retrying).
 */
export const OPERATOR_FORCED = 'operator_forced';

export const INTENT_ORIGINS = ['subscription', 'batch', 'api'] as const;
export type IntentOrigin = (typeof INTENT_ORIGINS)[number];
