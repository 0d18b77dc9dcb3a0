/**
 * The one rule for a reference that may have reached the gateway (README "Payments: states and
 * references", docs/sayswitch-wire.md "Error kinds"): pure decisions, no I/O.
 *
 * Once a request carrying a reference may have reached the gateway, the reference is never
 * declared failed by inference, and a new reference for the same money is never opened here (a
 * new attempt is only a dunning retry of a `failed` attempt, which the gateway itself failed).
 * `failed` comes only from the gateway's own word about the reference (a decline or a final failed
 * status) or from a request that provably never left, or that the gateway refused on the first
 * submission of the reference. When unsure: verify (`unknown`); when still unsure: `needs_review`.
 *
 * | what happened                                                                 | →                                |
 * | ----------------------------------------------------------------------------- | -------------------------------- |
 * | error `retryable` (provably unsent), `rate_limited`, 401/403                  | `queued`, same reference         |
 * | error `outcome_unknown`                                                       | `unknown`, verified              |
 * | error with `referenceExists` (a duplicate whose lookup found nothing)         | `unknown` + seen, verified       |
 * | error `fatal`, first submission of the reference                              | `failed` (`gateway_rejected`)    |
 * | error `fatal`, the reference may exist (resubmission, seen, data loss)        | `unknown`, verified              |
 * | answer `failed`, first submission                                             | `failed` (the gateway's word)    |
 * | answer `failed`, the reference may exist                                      | `unknown` + seen, verified       |
 * | lookup `not_found`, `unknown`, never seen, after the grace, resubmits < max   | `queued`, same reference         |
 * | lookup `not_found`, `unknown`, never seen, after the grace, resubmits = max   | `needs_review`                   |
 * | lookup `not_found` once seen, or in `pending`/`requires_action`/`needs_review`| nothing proven: keep checking    |
 */
import type { ErrorKind } from '../kernel/errors.ts';
import type { Intent } from '../kernel/payment.ts';
import type { LookupOutcome } from '../kernel/ports.ts';

/** The adapter's code for a duplicate answer whose lookup found nothing (kernel/ports.ts). */
export const DUPLICATE_REFERENCE_UNRESOLVED = 'duplicate_reference_unresolved';

/**
 * The `unknown` of a claim whose lease ran out before its worker answered: the worker may be gone,
 * or paused and yet to send. Its reason on the history line, and the mark that stays on the intent
 * (`claimLapsedAt`, read by {@link afterNotFound}).
 */
export function claimLapsed(now: number): {
  reason: 'lease_expired';
  patch: { claimLapsedAt: number };
} {
  return { reason: 'lease_expired', patch: { claimLapsedAt: now } };
}

/** What {@link mayExistAtGateway} reads of an intent. */
export type MayExistFields = Pick<Intent, 'unsentResubmits' | 'seenAtGateway' | 'afterDataLoss'>;

/**
 * Whether the intent's current reference may already exist at the gateway from an earlier
 * request: it was resubmitted after a verify proved it unsent (so an earlier request carrying it
 * was sent), the gateway already showed it exists, or the intent was created while a Redis data
 * loss was unacknowledged (`afterDataLoss`: the lost store may have sent it). False only for the
 * first submission of a reference (or one whose earlier tries provably never left) that the store
 * has known all along.
 */
export function mayExistAtGateway(intent: MayExistFields) {
  return (
    intent.unsentResubmits > 0 ||
    intent.seenAtGateway !== undefined ||
    intent.afterDataLoss !== undefined
  );
}

/** A submission error as the rule reads it. */
export interface SubmitError {
  kind: ErrorKind;
  code: string;
  /** 401/403: the gateway refused our credentials and processed nothing. */
  authFailure: boolean;
}

/**
 * Whether an error proves the reference exists at the gateway: the adapter's
 * `referenceExists: true` (a duplicate answer, in any shape, whose lookup found nothing), read
 * structurally, or its code `duplicate_reference_unresolved`.
 */
export function errorProvesReferenceExists(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { referenceExists?: unknown; code?: unknown };
  return e.referenceExists === true || e.code === DUPLICATE_REFERENCE_UNRESOLVED;
}

/** Where a `submitting` intent goes when its gateway call threw. */
export type AfterSubmitError =
  | { to: 'queued' }
  | { to: 'unknown'; seen: boolean }
  | { to: 'failed'; reason: 'gateway_rejected' };

/**
 * Where a `submitting` intent goes when its gateway call threw `err`: `queued` (same reference)
 * when the request provably never left or was not processed; `failed` only for a refusal
 * (`fatal`) of the first submission of the reference; otherwise `unknown`, to be verified, with
 * `seen` when the error proves the reference exists.
 */
export function afterSubmitError(
  err: SubmitError & { referenceExists?: unknown },
  intent: MayExistFields,
): AfterSubmitError {
  if (err.authFailure) return { to: 'queued' };
  const seen = errorProvesReferenceExists(err);
  switch (err.kind) {
    case 'retryable':
    case 'rate_limited':
      return seen ? { to: 'unknown', seen } : { to: 'queued' };
    case 'outcome_unknown':
      return { to: 'unknown', seen };
    case 'fatal':
      // A refusal of a resubmission may be the gateway refusing a reference it already has (a
      // duplicate in a validation error's words): what happened to the money is verified.
      return seen || mayExistAtGateway(intent)
        ? { to: 'unknown', seen }
        : { to: 'failed', reason: 'gateway_rejected' };
  }
}

/**
 * Whether a submission's own answer is adopted as it is, or verified first: a `failed` answer to
 * a submission whose reference may already exist at the gateway is verified (the gateway's answer
 * to a repeated request may be about the repetition, not the money); everything else is adopted.
 */
export function submitAnswerNeedsVerify(
  outcome: Pick<LookupOutcome, 'status'>,
  intent: MayExistFields,
): boolean {
  return outcome.status === 'failed' && mayExistAtGateway(intent);
}

/** What a lookup's `not_found` means for the intent. */
export type AfterNotFound =
  /** Resubmit the same reference (proven unsent). */
  | 'resubmit'
  /** Proven-unsent resubmissions are exhausted: a person looks. */
  | 'needs_review'
  /**
   * A refund whose claim lapsed (`lease_expired`): its worker may still send it, and nothing at
   * Sayswitch dedupes a second refund of a transaction, so "not found" cannot prove it never will
   * be. A person looks; it is never resent.
   */
  | 'needs_review_claim_lapsed'
  /** Too early to tell, or proof of nothing: keep the check schedule. */
  | 'keep_checking';

/**
 * What a lookup's `not_found` means. Only an `unknown` intent whose reference the gateway never
 * showed, sent at least `graceMs` ago, is proven unsent; it is resubmitted with the same reference
 * up to `maxUnsentResubmits` times, then handed to `needs_review` (never `failed`: the requests
 * did leave). In any other state, or once the reference was seen, "not found" proves nothing.
 *
 * Except a refund whose claim ever lapsed (`claimLapsedAt`): the grace period proves a
 * request that left has not landed, but not that a worker paused past its lease (GC, a stopped
 * VM) will not send one yet. A charge or payout sent late under the same reference meets the
 * gateway's duplicate check; a refund has none (docs/refunds.md), so resending it could give the
 * money back twice. It goes to `needs_review` instead.
 */
export function afterNotFound(
  intent: Pick<
    Intent,
    | 'type'
    | 'state'
    | 'claimLapsedAt'
    | 'unsentResubmits'
    | 'seenAtGateway'
    | 'sentAt'
    | 'updatedAt'
  >,
  now: number,
  policy: { notFoundGraceMs: number; maxUnsentResubmits: number },
): AfterNotFound {
  if (intent.state !== 'unknown' || intent.seenAtGateway !== undefined) return 'keep_checking';
  if (now - (intent.sentAt ?? intent.updatedAt) < policy.notFoundGraceMs) return 'keep_checking';
  if (intent.type === 'refund' && intent.claimLapsedAt !== undefined)
    return 'needs_review_claim_lapsed';
  return intent.unsentResubmits >= policy.maxUnsentResubmits ? 'needs_review' : 'resubmit';
}
