/**
 * The payment-intent state machine of docs/product.md §5. This table is the one place that
 * decides which transitions exist; the intent store (store/intent-store.ts) applies them
 * atomically and refuses the rest. The states themselves, and which of them count as final or
 * settled, are shared vocabulary in kernel/intent.ts.
 */
import { INTENT_STATES, type IntentState, type IntentType } from '../kernel/intent.ts';

/**
 * from → allowed next states: the table of docs/product.md §5 plus these additions (README
 * "Payments: states and references"):
 * - `pending → needs_review` when the reconcile schedule is exhausted and the gateway still says
 *   pending;
 * - `failed → queued` only as a NEW attempt (n+1) for a dunning retry, and a new attempt only that
 *   way ({@link NEW_ATTEMPT_FROM}), which the store enforces (the failed attempt is proven final);
 * - `requires_action` (a 3-D Secure challenge waits for the customer): entered only from
 *   `submitting` on the challenge answer; left on what verify says (`succeeded`, `failed`),
 *   for `pending` when REQUIRES_ACTION_WINDOW has passed and the gateway still says pending, and
 *   for `needs_review` when the checks are exhausted after the window. Never `failed` by
 *   inference, never back to `queued` (the reference exists at the gateway).
 * - `queued → failed` only to cancel a batch row (reason `canceled`, batches/operations.ts), with
 *   `expectAttempt`, `onlyFrom: ['queued']` and `neverSent`: safe because that `queued` intent's
 *   reference was never sent (a row re-queued after a verify proved its reference unsent, or
 *   created after a data loss, may still see an earlier request land: `neverSent` refuses it, and
 *   it is submitted like any queued row); a claim (`queued → submitting`) and the cancel are atomic
 *   against each other (a claim keeps the attempt, so `onlyFrom` is what refuses a cancel that
 *   read `queued` before the claim), and the submit job of a canceled row then finds it not
 *   `queued` and skips (payments/submit.ts).
 * `unknown → failed` is the gateway's own word only (a lookup); exhausted proven-unsent
 * resubmissions go to `needs_review` (payments/resubmission.ts).
 */
const TRANSITIONS: Readonly<Record<IntentState, readonly IntentState[]>> = {
  queued: ['submitting', 'failed'],
  submitting: ['pending', 'requires_action', 'succeeded', 'failed', 'unknown', 'queued'],
  pending: ['succeeded', 'failed', 'needs_review'],
  requires_action: ['succeeded', 'failed', 'pending', 'needs_review'],
  unknown: ['succeeded', 'failed', 'queued', 'needs_review'],
  succeeded: ['reversed'],
  failed: ['queued'],
  reversed: [],
  needs_review: ['succeeded', 'failed'],
};

/**
 * The only state a new attempt (n+1: a new reference for the same money) is opened from, into
 * `queued`: `failed`, the gateway's own word that the attempt is final and moved nothing. The store
 * applies it inside the transition's atomic step whatever else the caller asks
 * (store/intent-store.ts), so no caller can open one on an `unknown` or `submitting` attempt.
 */
export const NEW_ATTEMPT_FROM: readonly IntentState[] = ['failed'];

/** Whether `from → to` is in the table. `succeeded → reversed` applies to payouts only. */
export function canTransition(from: IntentState, to: IntentState, type: IntentType): boolean {
  if (from === 'succeeded' && to === 'reversed' && type !== 'payout') return false;
  return TRANSITIONS[from].includes(to);
}

/** Every state from which `to` may be reached, for the store's atomic compare-and-set. */
export function allowedFrom(to: IntentState, type: IntentType): IntentState[] {
  return INTENT_STATES.filter((from) => canTransition(from, to, type));
}
