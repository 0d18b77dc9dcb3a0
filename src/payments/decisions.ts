/**
 * What an outcome or an error means for an intent: pure decisions, one place each.
 */
import type { ErrorKind } from '../kernel/errors.ts';
import type { IntentState } from '../kernel/intent.ts';
import type { LookupOutcome } from '../kernel/ports.ts';

/**
 * Where a `submitting` intent goes when its gateway call threw. Provably unsent (retryable,
 * rate-limited, or refused credentials) goes back to `queued`; a request that may have reached the
 * gateway is `unknown`; a validation refusal is `failed`.
 */
export function stateAfterSubmitError(kind: ErrorKind, authFailure: boolean): IntentState {
  if (authFailure) return 'queued';
  switch (kind) {
    case 'retryable':
    case 'rate_limited':
      return 'queued';
    case 'outcome_unknown':
      return 'unknown';
    case 'fatal':
      return 'failed';
  }
}

/** The intent state a gateway answer proves, or undefined when it proves nothing yet. */
export function stateForOutcome(outcome: LookupOutcome): IntentState | undefined {
  switch (outcome.status) {
    case 'succeeded':
      return 'succeeded';
    case 'failed':
      return 'failed';
    case 'pending':
      return 'pending';
    case 'reversed':
      return 'reversed';
    case 'not_found':
      return undefined;
  }
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
