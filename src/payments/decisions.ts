/**
 * What an outcome means for an intent: pure decisions, one place each. What a submission error or
 * a "not found" means for a reference that may have reached the gateway is resubmission.ts.
 */
import type { FailureReason, IntentState } from '../kernel/intent.ts';
import type { Intent } from '../kernel/payment.ts';
import type { LookupOutcome } from '../kernel/ports.ts';

/** The intent state a gateway answer proves, or undefined when it proves nothing yet. */
export function stateForOutcome(outcome: LookupOutcome): IntentState | undefined {
  switch (outcome.status) {
    case 'succeeded':
      return 'succeeded';
    case 'failed':
      return 'failed';
    case 'pending':
      return 'pending';
    case 'requires_action':
      return 'requires_action';
    case 'reversed':
      return 'reversed';
    case 'not_found':
      return undefined;
  }
}

/** What a still-waiting answer (`pending` or `requires_action`) does to an intent. */
export type WaitingAnswer =
  /** A submission's answer: enter the state the gateway named. */
  | { move: 'pending' | 'requires_action' }
  /** REQUIRES_ACTION_WINDOW passed and the gateway still says pending: an ordinary pending payment. */
  | { move: 'pending'; why: 'requires_action_window_passed' }
  /** No news: the intent keeps its state and its check schedule (the reference is known to exist). */
  | { move: undefined };

/**
 * What a `pending` or `requires_action` answer does to `intent` at `now`:
 * - `submitting` enters the named state;
 * - `requires_action` stays while its window runs, whatever the gateway says short of final: a
 *   challenge waiting for the customer and one completed but still settling both verify as
 *   pending. Once the window has passed, `pending` moves it to `pending` (checked on the schedule,
 *   exhausted → needs_review: never failed by inference); `requires_action` keeps it;
 * - `unknown`, `pending` and `needs_review` stay (`unknown → pending` is not in the table: an
 *   unknown payment the gateway calls pending keeps its schedule, which is what pending would do).
 */
export function afterWaitingAnswer(
  intent: Pick<Intent, 'state' | 'requiresActionUntil'>,
  answer: 'pending' | 'requires_action',
  now: number,
): WaitingAnswer {
  if (intent.state === 'submitting') return { move: answer };
  if (
    intent.state === 'requires_action' &&
    answer === 'pending' &&
    now >= (intent.requiresActionUntil ?? 0)
  ) {
    return { move: 'pending', why: 'requires_action_window_passed' };
  }
  return { move: undefined };
}

/**
 * The reason a `failed` answer is recorded with: the gateway's own, except that a challenged
 * intent (`requires_action`) records a generic decline as `authentication_required`: from our side
 * the challenge was never completed (it failed, was abandoned or expired; the gateway's words stay
 * in `message`). A specific reason (`insufficient_funds`, `canceled`, or `authentication_required`
 * read by the adapter) stands. Known imprecision: a challenge completed and then declined by the
 * issuer, first verified as failed, also reads `authentication_required` (message "Declined").
 */
export function failureReasonFor(
  intent: Pick<Intent, 'state'>,
  reason: FailureReason,
): FailureReason {
  return intent.state === 'requires_action' && reason === 'declined'
    ? 'authentication_required'
    : reason;
}

/**
 * When the next reconcile check is due: `schedule[checks]` after `since`, or undefined when the
 * schedule is exhausted. Delays are cumulative from the previous check.
 */
export function nextCheckAt(
  since: number,
  checks: number,
  scheduleMs: readonly number[],
): number | undefined {
  const delay = scheduleMs[checks];
  return delay === undefined ? undefined : since + delay;
}

/**
 * {@link nextCheckAt} for an intent: a `requires_action` intent is also checked when its window
 * ends, and its schedule running out before then does not end it (the next check is the window's
 * end); after the window, as any other.
 */
export function nextCheckFor(
  intent: Pick<Intent, 'state' | 'requiresActionUntil'>,
  since: number,
  checks: number,
  scheduleMs: readonly number[],
): number | undefined {
  const next = nextCheckAt(since, checks, scheduleMs);
  const until = intent.requiresActionUntil;
  if (intent.state !== 'requires_action' || until === undefined || until <= since) return next;
  return next === undefined ? until : Math.min(next, until);
}
