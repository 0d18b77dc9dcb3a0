/**
 * The reconcile core: verify an intent's attempt by reference and adopt what the gateway says.
 * `not_found` after the grace period proves the attempt unsent: the intent goes back to `queued`
 * with the same reference (bounded), so the gateway's duplicate check still guards a late arrival.
 * Checks follow RECONCILE_SCHEDULE; exhausted → `needs_review`.
 */
import { RetryableError } from '../kernel/errors.ts';
import { nextCheckAt } from './decisions.ts';
import type { Clock } from '../kernel/clock.ts';
import type { Intent } from '../kernel/payment.ts';
import type { LookupOutcome, PaymentGateway } from '../kernel/ports.ts';
import { applyOutcome, markUnresolved, type OutcomeDeps } from './apply-outcome.ts';
import { DelayRequest, type HandlerContext } from '../infra/queues/processor.ts';
import type { JobPayload } from '../infra/queues/catalog.ts';

export interface ReconcileDeps extends OutcomeDeps {
  gateway: PaymentGateway;
  clock: Clock;
}

function lookup(deps: ReconcileDeps, intent: Intent): Promise<LookupOutcome> {
  return intent.type === 'charge'
    ? deps.gateway.verifyCharge(intent.reference)
    : deps.gateway.lookupPayout(intent.reference);
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
      await markUnresolved(deps, intent, 'unknown', now, 'lease_expired');
      return { moved: 'unknown' };
    }
    const watchingPayout = intent.state === 'succeeded' && intent.type === 'payout';
    const checkable =
      intent.state === 'pending' || intent.state === 'unknown' || intent.state === 'needs_review';
    if (!checkable && !watchingPayout) return { skipped: 'final', state: intent.state };

    const outcome = await lookup(deps, intent);
    log.info(
      {
        key: intent.key,
        reference: intent.reference,
        state: intent.state,
        found: outcome.status,
        cause: data.cause,
      },
      'reconcile check',
    );
    const applied = await applyOutcome(deps, intent, outcome, deps.clock.now());
    if (applied?.ok) return { moved: applied.intent.state };

    if (
      outcome.status === 'not_found' &&
      intent.state === 'unknown' &&
      now - (intent.sentAt ?? intent.updatedAt) >= deps.policy.notFoundGraceMs
    ) {
      return resubmitOrFail(deps, intent, now);
    }
    if (intent.state === 'needs_review') return { unchanged: intent.state };

    // Still unresolved. Only the scheduled chain (or the sweep standing in for it) moves the
    // schedule forward; a webhook-triggered or stale check only verifies.
    const ownsSchedule =
      (data.cause === 'schedule' || data.cause === 'sweep') && data.checks === intent.checks;
    if (!ownsSchedule) return { unchanged: intent.state };
    const checks = intent.checks + 1;
    const schedule = watchingPayout ? deps.policy.payoutWatchMs : deps.policy.scheduleMs;
    const next = nextCheckAt(now, checks, schedule);
    if (next === undefined) {
      if (watchingPayout) {
        await deps.store.recordCheck(intent, checks, undefined);
        return { watched: 'done' };
      }
      const res = await deps.store.transition(intent.key, 'needs_review', now, {
        expectAttempt: intent.attempt,
        reason: 'reconcile_exhausted',
      });
      log.warn(
        { key: intent.key, reference: intent.reference, ok: res.ok },
        'reconcile schedule exhausted: needs review',
      );
      return { moved: 'needs_review' };
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

async function resubmitOrFail(deps: ReconcileDeps, intent: Intent, now: number): Promise<unknown> {
  if (intent.unsentResubmits >= deps.policy.maxUnsentResubmits) {
    const res = await deps.store.transition(intent.key, 'failed', now, {
      expectAttempt: intent.attempt,
      reason: 'gateway_unavailable',
      patch: { reason: 'gateway_unavailable', message: 'the gateway never recorded this payment' },
    });
    deps.logger.warn(
      { key: intent.key, reference: intent.reference, ok: res.ok },
      'proven unsent too often: failed',
    );
    return { moved: 'failed' };
  }
  const res = await deps.store.transition(intent.key, 'queued', now, {
    expectAttempt: intent.attempt,
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
