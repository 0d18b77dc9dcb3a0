/**
 * The reconcile core: verify an intent's attempt by reference and adopt what the gateway says.
 * What a `not_found` proves is resubmission.ts's decision: only for an `unknown` intent whose
 * reference the gateway never showed, after the grace period, is the attempt proven unsent; it goes
 * back to `queued` with the same reference (bounded; then `needs_review`), so the gateway's
 * duplicate check still guards a late arrival. Checks follow RECONCILE_SCHEDULE (a
 * `requires_action` intent also at the end of REQUIRES_ACTION_WINDOW); exhausted → `needs_review`.
 */
import { RetryableError, UnreadableAnswerError } from '../kernel/errors.ts';
import { nextCheckAt, nextCheckFor } from './decisions.ts';
import { afterNotFound, claimLapsed } from './resubmission.ts';
import type { Clock } from '../kernel/clock.ts';
import type { Intent } from '../kernel/payment.ts';
import type { LookupOutcome, PaymentGateway, RefundStore } from '../kernel/ports.ts';
import { lookupRefund } from './refunds/lookup.ts';
import { applyOutcome, markUnresolved, type OutcomeDeps } from './apply-outcome.ts';
import { DelayRequest, type HandlerContext } from '../infra/queues/processor.ts';
import type { JobPayload } from '../infra/queues/catalog.ts';

export interface ReconcileDeps extends OutcomeDeps {
  gateway: PaymentGateway;
  clock: Clock;
  /** A refund is looked up among its charge's refunds (payments/refunds/lookup.ts). */
  refunds: RefundStore;
}

/** States whose attempt is still being asked about. */
const CHECKABLE = new Set(['pending', 'requires_action', 'unknown', 'needs_review']);

function lookup(deps: ReconcileDeps, intent: Intent): Promise<LookupOutcome> {
  if (intent.type === 'refund') return lookupRefund(deps, intent);
  return intent.type === 'charge'
    ? deps.gateway.verifyCharge(intent.reference)
    : deps.gateway.lookupPayout(intent.reference);
}

/**
 * The lookup, or the code of an answer we could not read ({@link UnreadableAnswerError}): that is
 * a check that learned nothing final and counts against the schedule like a `pending`, so an
 * answer that stays unreadable ends in `needs_review`. A gateway we could not reach (a timeout, a
 * 5xx) is thrown, and the job retries as before.
 */
async function readableLookup(
  deps: ReconcileDeps,
  intent: Intent,
): Promise<LookupOutcome | { unreadable: string }> {
  try {
    return await lookup(deps, intent);
  } catch (err) {
    if (err instanceof UnreadableAnswerError) return { unreadable: err.code };
    throw err;
  }
}

/** Handler for `reconcile.check`. */
export function createReconcileHandler(deps: ReconcileDeps) {
  return async (data: JobPayload<'reconcile.check'>, { log }: HandlerContext): Promise<unknown> => {
    const intent = await deps.store.get(data.key);
    if (!intent) {
      // A webhook can arrive before the intent is written: retry until it exists.
      if (data.cause === 'webhook')
        throw new RetryableError(`intent ${data.key} not written yet`, 'intent_not_yet_written');
      return { skipped: 'missing' };
    }
    const now = deps.clock.now();

    if (intent.state === 'submitting') {
      if ((intent.leaseUntil ?? 0) > now) {
        // A webhook can beat the worker's own answer (e.g. the response is slow): look again
        // shortly instead of dropping it, or the payment would wait for the next scheduled check.
        if (data.cause === 'webhook')
          throw new DelayRequest(Math.min((intent.leaseUntil ?? now) + 1, now + 500));
        return { skipped: 'lease_held' };
      }
      await markUnresolved(deps, intent, 'unknown', now, claimLapsed(now));
      return { moved: 'unknown' };
    }
    const watchingPayout = intent.state === 'succeeded' && intent.type === 'payout';
    if (!CHECKABLE.has(intent.state) && !watchingPayout)
      return { skipped: 'final', state: intent.state };

    const read = await readableLookup(deps, intent);
    const found = 'unreadable' in read ? undefined : read;
    log[found ? 'info' : 'warn'](
      {
        key: intent.key,
        reference: intent.reference,
        state: intent.state,
        found: found?.status ?? 'unreadable',
        ...('unreadable' in read ? { code: read.unreadable } : {}),
        cause: data.cause,
      },
      found ? 'reconcile check' : 'reconcile check: the gateway answered in a form we cannot read',
    );
    const at = deps.clock.now();
    const applied = found && (await applyOutcome(deps, intent, found, at));
    if (applied?.ok) return { moved: applied.intent.state };

    if (found?.status === 'not_found') {
      const next = afterNotFound(intent, now, deps.policy);
      if (next === 'resubmit') return resubmit(deps, intent, now);
      if (next === 'needs_review')
        return needsReview(deps, intent, now, 'unsent_resubmits_exhausted');
      if (next === 'needs_review_claim_lapsed')
        return needsReview(deps, intent, now, 'refund_claim_lapsed');
    }
    if (unconfirmedClaim(data, intent, found, watchingPayout)) {
      log.info(
        {
          key: intent.key,
          reference: intent.reference,
          state: intent.state,
          claimed: data.claimed,
          found: found?.status ?? 'unreadable',
        },
        'webhook claim not confirmed by the lookup: looking again',
      );
      throw new RetryableError(
        `the webhook says ${data.claimed ?? ''}; the lookup does not (yet)`,
        'webhook_claim_unconfirmed',
      );
    }
    if (intent.state === 'needs_review') return { unchanged: intent.state };

    // Still unresolved. Only the scheduled chain (or the sweep standing in for it) moves the
    // schedule forward; a webhook-triggered or stale check only verifies.
    const ownsSchedule =
      (data.cause === 'schedule' || data.cause === 'sweep') && data.checks === intent.checks;
    if (!ownsSchedule) return { unchanged: intent.state };
    const checks = intent.checks + 1;
    const next = watchingPayout
      ? nextCheckAt(now, checks, deps.policy.payoutWatchMs)
      : nextCheckFor(intent, now, checks, deps.policy.scheduleMs);
    if (next === undefined) {
      if (watchingPayout) {
        await deps.store.recordCheck(intent, checks, undefined);
        return { watched: 'done' };
      }
      return needsReview(deps, intent, now, 'reconcile_exhausted');
    }
    if (await deps.store.recordCheck(intent, checks, next)) {
      await deps.dispatcher.reconcile(
        { ...intent, checks },
        { delayMs: next - now, cause: 'schedule' },
      );
    }
    return { unchanged: intent.state, nextCheckAt: next };
  };
}

/**
 * A webhook claimed a final status that this check's lookup does not show, where no scheduled
 * check will look again: a payment in `needs_review` (its checks ran out) or a succeeded payout
 * (its watch may have ended; a webhook check never moves the watch's schedule). A lookup can lag
 * behind the webhook, so the check is retried with the job's backoff (`reconcile.check`'s
 * attempts, about ten minutes in all) instead of completing: a later copy of the same webhook
 * would have the same job id and be dropped. The claim is never adopted; when the lookup never
 * confirms it, the job ends failed, in the failed-jobs alert, for a person.
 */
function unconfirmedClaim(
  data: JobPayload<'reconcile.check'>,
  intent: Intent,
  found: LookupOutcome | undefined,
  watchingPayout: boolean,
): boolean {
  if (data.cause !== 'webhook' || data.claimed === undefined || data.claimed === 'pending')
    return false;
  if (intent.state !== 'needs_review' && !watchingPayout) return false;
  return found?.status !== data.claimed;
}

/** Still unsure after every check or resubmission allowed: a person looks (never `failed`). */
async function needsReview(
  deps: ReconcileDeps,
  intent: Intent,
  now: number,
  reason: 'reconcile_exhausted' | 'unsent_resubmits_exhausted' | 'refund_claim_lapsed',
): Promise<unknown> {
  const res = await deps.store.transition(intent.key, 'needs_review', now, {
    expectAttempt: intent.attempt,
    reason,
  });
  deps.logger.warn(
    { key: intent.key, reference: intent.reference, reason, ok: res.ok },
    'unresolved: needs review',
  );
  return { moved: 'needs_review' };
}

/**
 * Verify proved the attempt unsent: submit the same reference again. Only from the state the proof
 * was read with (`unknown`): another check of the same intent (a webhook's, the sweep's) may have
 * re-queued it meanwhile and a worker claimed it again on the same attempt; `submitting → queued`
 * would hand that reference to a second worker while the first is sending it.
 */
async function resubmit(deps: ReconcileDeps, intent: Intent, now: number): Promise<unknown> {
  const res = await deps.store.transition(intent.key, 'queued', now, {
    expectAttempt: intent.attempt,
    onlyFrom: [intent.state],
    unsentResubmit: true,
    reason: 'verified_unsent',
  });
  if (res.ok) {
    deps.logger.info(
      { key: intent.key, reference: intent.reference },
      'verify proved the attempt unsent: resubmitting the same reference',
    );
    await deps.dispatcher.submit(res.intent);
  }
  return { moved: 'queued' };
}
