/**
 * The payment-intent state machine of PRODUCT.md section 5. This table is the one place that
 * decides which transitions exist; the Redis store applies them atomically and refuses the rest.
 */
import { z } from 'zod';

export const INTENT_STATES = [
  'queued',
  'submitting',
  'pending',
  'unknown',
  'succeeded',
  'failed',
  'reversed',
  'needs_review',
] as const;
export type IntentState = (typeof INTENT_STATES)[number];
export const intentStateSchema = z.enum(INTENT_STATES);

export const INTENT_TYPES = ['charge', 'payout'] as const;
export type IntentType = (typeof INTENT_TYPES)[number];

/**
 * from → allowed next states. One addition to PRODUCT.md's table, from the reconciler issue:
 * `pending → needs_review` when the reconcile schedule is exhausted and the gateway still says
 * pending; and one from the recurring-billing issue: `failed → queued` only as a NEW attempt
 * (n+1) for a dunning retry, which the store enforces (the failed attempt is proven final).
 */
const TRANSITIONS: Readonly<Record<IntentState, readonly IntentState[]>> = {
  queued: ['submitting'],
  submitting: ['pending', 'succeeded', 'failed', 'unknown', 'queued'],
  pending: ['succeeded', 'failed', 'needs_review'],
  unknown: ['succeeded', 'failed', 'queued', 'needs_review'],
  succeeded: ['reversed'],
  failed: ['queued'],
  reversed: [],
  needs_review: ['succeeded', 'failed'],
};

/** States in which the intent's money question is answered (or handed to a human). */
export const FINAL_STATES: readonly IntentState[] = ['succeeded', 'failed', 'reversed'];
/** States the reconciler drives to a final status. */
export const UNRESOLVED_STATES: readonly IntentState[] = ['pending', 'unknown'];

export function isFinal(state: IntentState): boolean {
  return FINAL_STATES.includes(state);
}

/** Whether `from → to` is in the table. `succeeded → reversed` applies to payouts only. */
export function canTransition(from: IntentState, to: IntentState, type: IntentType): boolean {
  if (from === 'succeeded' && to === 'reversed' && type !== 'payout') return false;
  return TRANSITIONS[from].includes(to);
}

/** Every state from which `to` may be reached, for the store's atomic compare-and-set. */
export function allowedFrom(to: IntentState, type: IntentType): IntentState[] {
  return INTENT_STATES.filter((from) => canTransition(from, to, type));
}

/** Why a payment failed; the gateway's own words go to `message`. */
export const FAILURE_REASONS = [
  'declined',
  'insufficient_funds',
  'invalid',
  'gateway_rejected',
  'gateway_unavailable',
  'canceled',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export const INTENT_ORIGINS = ['subscription', 'batch', 'api'] as const;
export type IntentOrigin = (typeof INTENT_ORIGINS)[number];
