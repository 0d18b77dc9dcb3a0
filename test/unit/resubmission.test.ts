/**
 * Pins the one rule for a reference that may have reached the gateway (payments/resubmission.ts,
 * README "Payments: states and references"): never failed by inference, never a fresh attempt;
 * when unsure verify, when still unsure needs_review.
 */
import { describe, expect, it } from 'vitest';
import {
  BillingError,
  FatalError,
  OutcomeUnknownError,
  RateLimitedError,
  RetryableError,
  type ErrorKind,
} from '../../src/kernel/errors.ts';
import {
  afterNotFound,
  claimLapsed,
  afterSubmitError,
  errorProvesReferenceExists,
  mayExistAtGateway,
  submitAnswerNeedsVerify,
} from '../../src/payments/resubmission.ts';

/** The first submission of a reference: nothing was sent with it before. */
const FIRST = { unsentResubmits: 0 };
/** A resubmission: verify proved an earlier request unsent, so one was sent. */
const RESUBMISSION = { unsentResubmits: 1 };
/** The gateway already showed the reference (a duplicate, pending or challenge answer). */
const SEEN = { unsentResubmits: 0, seenAtGateway: 1_000 };
/**
 * Created while a Redis data loss was unacknowledged: the lost store may have sent the reference,
 * so even its first submission here may be a repeat.
 */
const AFTER_DATA_LOSS = { unsentResubmits: 0, afterDataLoss: 1_000 };

/** What the adapter throws for a duplicate whose lookup found nothing. */
class DuplicateUnresolved extends OutcomeUnknownError {
  readonly referenceExists = true as const;
  constructor() {
    super('duplicate, lookup found nothing', 'duplicate_reference_unresolved');
  }
}

describe('where a submission error leaves the intent', () => {
  it('provably unsent or not processed: queued, the same reference again', () => {
    for (const err of [
      new RetryableError('refused', 'connection_refused'),
      new RateLimitedError('429', 1_000),
      new FatalError('401', 'unauthorized', { authFailure: true }),
    ]) {
      expect(afterSubmitError(err, FIRST), err.code).toEqual({ to: 'queued' });
      expect(afterSubmitError(err, RESUBMISSION), err.code).toEqual({ to: 'queued' });
    }
  });

  it('maybe delivered: unknown, verified, whether first or resubmitted', () => {
    const err = new OutcomeUnknownError('timeout after send', 'timeout');
    expect(afterSubmitError(err, FIRST)).toEqual({ to: 'unknown', seen: false });
    expect(afterSubmitError(err, RESUBMISSION)).toEqual({ to: 'unknown', seen: false });
  });

  it('a duplicate answer is proof the reference exists, by marker or by code', () => {
    expect(afterSubmitError(new DuplicateUnresolved(), FIRST)).toEqual({
      to: 'unknown',
      seen: true,
    });
    const byCode = new OutcomeUnknownError('dup', 'duplicate_reference_unresolved');
    expect(errorProvesReferenceExists(byCode)).toBe(true);
    expect(afterSubmitError(byCode, RESUBMISSION)).toEqual({ to: 'unknown', seen: true });
    expect(errorProvesReferenceExists(new OutcomeUnknownError('x', 'server_error'))).toBe(false);
    expect(errorProvesReferenceExists(undefined)).toBe(false);
  });

  it('a refusal (fatal, e.g. HTTP 400) fails only the first submission of a reference', () => {
    const err = new FatalError('400', 'bad_request');
    expect(afterSubmitError(err, FIRST)).toEqual({ to: 'failed', reason: 'gateway_rejected' });
    // The same answer to a resubmission may be the gateway refusing a reference it already has.
    expect(afterSubmitError(err, RESUBMISSION)).toEqual({ to: 'unknown', seen: false });
    expect(afterSubmitError(err, SEEN)).toEqual({ to: 'unknown', seen: false });
    // And to the first submission here of a reference the store lost may refuse a repeat.
    expect(afterSubmitError(err, AFTER_DATA_LOSS)).toEqual({ to: 'unknown', seen: false });
  });

  it('an error carrying the existence marker is never queued or failed, whatever its kind', () => {
    const kinds: ErrorKind[] = ['retryable', 'rate_limited', 'fatal', 'outcome_unknown'];
    for (const kind of kinds) {
      const err = Object.assign(new BillingError('dup', { kind, code: 'x' }), {
        referenceExists: true,
      });
      expect(afterSubmitError(err, FIRST), kind).toEqual({ to: 'unknown', seen: true });
    }
  });

  it('no error ever fails a reference that may exist at the gateway', () => {
    const kinds: ErrorKind[] = ['retryable', 'rate_limited', 'fatal', 'outcome_unknown'];
    for (const kind of kinds) {
      for (const code of ['bad_request', 'http_418', 'duplicate_reference_unresolved']) {
        for (const intent of [RESUBMISSION, SEEN]) {
          const next = afterSubmitError(new BillingError('x', { kind, code }), intent);
          expect(next.to, `${kind} ${code}`).not.toBe('failed');
        }
      }
    }
  });
});

describe('a failed answer to the submission itself', () => {
  it('is adopted on the first submission and verified on a resubmission', () => {
    expect(submitAnswerNeedsVerify({ status: 'failed' }, FIRST)).toBe(false);
    expect(submitAnswerNeedsVerify({ status: 'failed' }, RESUBMISSION)).toBe(true);
    expect(submitAnswerNeedsVerify({ status: 'failed' }, SEEN)).toBe(true);
    expect(submitAnswerNeedsVerify({ status: 'failed' }, AFTER_DATA_LOSS)).toBe(true);
    for (const status of ['succeeded', 'pending', 'requires_action'] as const) {
      expect(submitAnswerNeedsVerify({ status }, RESUBMISSION)).toBe(false);
    }
  });
});

describe('what a lookup saying "not found" proves', () => {
  const policy = { notFoundGraceMs: 1_000, maxUnsentResubmits: 2 };
  const unknown = (extra: Partial<Parameters<typeof afterNotFound>[0]> = {}) => ({
    type: 'charge' as const,
    state: 'unknown' as const,
    unsentResubmits: 0,
    sentAt: 10_000,
    updatedAt: 10_000,
    ...extra,
  });

  it('nothing within the grace period', () => {
    expect(afterNotFound(unknown(), 10_999, policy)).toBe('keep_checking');
  });

  it('unsent after the grace: resubmit the same reference, up to the bound, then needs_review', () => {
    expect(afterNotFound(unknown(), 11_000, policy)).toBe('resubmit');
    expect(afterNotFound(unknown({ unsentResubmits: 1 }), 11_000, policy)).toBe('resubmit');
    expect(afterNotFound(unknown({ unsentResubmits: 2 }), 11_000, policy)).toBe('needs_review');
  });

  it('nothing once the gateway showed the reference (a duplicate answer, lookup lag)', () => {
    expect(afterNotFound(unknown({ seenAtGateway: 10_500 }), 99_000, policy)).toBe('keep_checking');
  });

  it('nothing in a state whose reference the gateway already answered for', () => {
    for (const state of ['pending', 'requires_action', 'needs_review'] as const) {
      expect(afterNotFound(unknown({ state }), 99_000, policy), state).toBe('keep_checking');
    }
  });

  it('a refund whose claim lapsed is never resent: its worker may still send it', () => {
    const lapsed = claimLapsed(10_000).patch;
    expect(afterNotFound(unknown({ type: 'refund', ...lapsed }), 10_999, policy)).toBe(
      'keep_checking',
    );
    expect(afterNotFound(unknown({ type: 'refund', ...lapsed }), 11_000, policy)).toBe(
      'needs_review_claim_lapsed',
    );
    // A charge or payout sent late meets the gateway's duplicate check: resent as before.
    for (const type of ['charge', 'payout'] as const)
      expect(afterNotFound(unknown({ type, ...lapsed }), 11_000, policy), type).toBe('resubmit');
    // A refund whose own worker recorded the unknown (a timeout, a 5xx) is done sending.
    expect(afterNotFound(unknown({ type: 'refund' }), 11_000, policy)).toBe('resubmit');
  });

  it('never fails: the worst it does is hand the payment to a person', () => {
    for (let n = 0; n < 5; n++) {
      expect(['resubmit', 'needs_review', 'needs_review_claim_lapsed', 'keep_checking']).toContain(
        afterNotFound(unknown({ unsentResubmits: n }), 1e9, policy),
      );
    }
  });
});

describe('mayExistAtGateway', () => {
  it('is false only for a first submission never shown by the gateway, of an intent the store kept', () => {
    expect(mayExistAtGateway(FIRST)).toBe(false);
    expect(mayExistAtGateway(RESUBMISSION)).toBe(true);
    expect(mayExistAtGateway(SEEN)).toBe(true);
    expect(mayExistAtGateway(AFTER_DATA_LOSS)).toBe(true);
  });
});
