/**
 * The charge and payout workers' handler: claim the intent (`queued → submitting` with a lease,
 * which starts now) and take the outbound rate limit's token in the same atomic step, call the
 * gateway with the attempt's reference (it does not wait for a token again), record the outcome.
 * Over the limit the claim changes nothing and the handler waits for the limit's window to end,
 * then claims again, so time spent waiting for a token never eats into the lease and SUBMIT_LEASE
 * only has to cover the call itself (config.ts checks it against SAYSWITCH_TIMEOUT_MS). A job that
 * finds nothing to submit takes no token. A duplicate or replayed job
 * finds the intent already claimed or finished and never calls the gateway again; a job that
 * finds another worker's claim waits for the lease and then hands the intent to the reconciler
 * as `unknown`: it never resubmits blindly. What an error or a failed answer means for a reference
 * that may already be at the gateway is decided in resubmission.ts. A worker whose claim was
 * replaced while it called (its lease ran out: docs/operations.md "The submit lease") finds every
 * transition refused as `stale` and ends its job there: it records nothing, and its error is not
 * rethrown, so the job is neither retried nor re-run (the intent has the newer claim's job).
 */
import { BillingError, OutcomeUnknownError } from '../kernel/errors.ts';
import { afterSubmitError, claimLapsed, submitAnswerNeedsVerify } from './resubmission.ts';
import type { Clock } from '../kernel/clock.ts';
import type { Intent } from '../kernel/payment.ts';
import type { ChargeCurrency, PayoutCurrency } from '../kernel/money.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayOutcome, PaymentGateway, TransitionResult } from '../kernel/ports.ts';
import { applyOutcome, heldClaim, markUnresolved, type OutcomeDeps } from './apply-outcome.ts';
import { DelayRequest, type HandlerContext } from '../infra/queues/processor.ts';
import type { JobPayload } from '../infra/queues/catalog.ts';
import type { RefundStore, Sealer } from '../kernel/ports.ts';
import { submitRefund, takeRefundSlot } from './refunds/submit.ts';

export interface SubmitDeps extends OutcomeDeps {
  /** Its `chargeCard` and `payout` do not take a rate-limit token: the claim takes it. */
  gateway: PaymentGateway;
  sealer: Sealer;
  clock: Clock;
  /** How long a claim holds, from the claim; longer than the gateway timeout. */
  leaseMs: number;
  /** Refunds' slots and siblings (payments/refunds/submit.ts). */
  refunds: RefundStore;
}

/**
 * Whether the claim's transition was refused because the claim is over (the intent is no longer
 * `submitting` under its lease, or a new attempt opened): the late answer is logged, not recorded.
 */
function claimReplaced(
  log: HandlerContext['log'],
  claimed: Intent,
  res: TransitionResult | undefined,
  answer: string,
): boolean {
  if (res === undefined || res.ok || res.why !== 'stale') return false;
  log.warn(
    { key: claimed.key, reference: claimed.reference, state: res.state, answer },
    'late answer of a claim that was replaced: not recorded',
  );
  return true;
}

function callGateway(deps: SubmitDeps, intent: Intent): Promise<GatewayOutcome> {
  const p = intent.payee;
  if (p.kind === 'refund') return submitRefund(deps, intent);
  if (p.kind === 'charge') {
    return deps.gateway.chargeCard({
      reference: intent.reference,
      amount: intent.amount,
      currency: intent.currency as ChargeCurrency,
      email: p.email,
      cardToken: deps.sealer.unseal(p.cardTokenSealed),
      ...(p.narration !== undefined ? { narration: p.narration } : {}),
    });
  }
  return deps.gateway.payout({
    reference: intent.reference,
    amount: intent.amount,
    currency: intent.currency as PayoutCurrency,
    accountNumber: p.accountNumber,
    bankCode: p.bankCode,
    bankName: p.bankName,
    accountName: p.accountName,
    narration: p.narration,
    paymentMode: p.paymentMode,
  });
}

/** Handler for `charges.submit` and `payouts.submit`. */
export function createSubmitHandler(deps: SubmitDeps) {
  return async (data: JobPayload<'charges.submit'>, { log }: HandlerContext): Promise<unknown> => {
    // A refund waits while another refund of its charge is at the gateway (docs/refunds.md).
    await takeRefundSlot(deps, data.key, deps.clock.now(), deps.policy.scheduleMs[0] ?? 1_000, log);
    // Claim and token in one atomic step: the common case (a fresh job for a queued intent under
    // the limit) costs one script call, and the lease starts once the call may go out.
    let now: number;
    let claim: TransitionResult;
    for (;;) {
      now = deps.clock.now();
      claim = await deps.store.transition(data.key, 'submitting', now, {
        expectAttempt: data.attempt,
        patch: { leaseUntil: now + deps.leaseMs, sentAt: now },
        rateLimited: true,
      });
      if (claim.ok || claim.why !== 'rate_limited') break;
      // Over the limit: wait for the window to end (plus a little jitter, so the workers waiting
      // do not all claim in the same millisecond), then claim again.
      await sleep(claim.retryInMs + Math.floor(Math.random() * 20));
    }
    if (!claim.ok) {
      if (claim.why === 'missing') {
        log.error({ key: data.key }, 'submit job for an intent that does not exist');
        return { skipped: 'missing' };
      }
      if (claim.why === 'stale') return { skipped: 'stale_attempt', state: claim.state };
      if (claim.state !== 'submitting') return { skipped: 'already', state: claim.state };
      // Another claim holds the intent: this job is a duplicate or its worker died mid-call.
      const intent = await deps.store.get(data.key);
      if (!intent || intent.state !== 'submitting')
        return { skipped: 'already', state: intent?.state };
      if ((intent.leaseUntil ?? 0) > now) throw new DelayRequest((intent.leaseUntil ?? now) + 1);
      // The claim expired with nobody recording an outcome: the process holding it died or hung.
      await markUnresolved(deps, intent, 'unknown', now, claimLapsed(now));
      return { skipped: 'lease_expired' };
    }
    const claimed = claim.intent;
    log.info(
      {
        key: claimed.key,
        reference: claimed.reference,
        amount: claimed.amount,
        currency: claimed.currency,
      },
      'submitting to gateway',
    );

    let outcome: GatewayOutcome;
    try {
      outcome = await callGateway(deps, claimed);
    } catch (raw) {
      // Anything unexpected after the claim may have happened after sending: treat as unknown.
      const err =
        raw instanceof BillingError
          ? raw
          : new OutcomeUnknownError('unexpected error while submitting', 'unexpected', raw);
      const next = afterSubmitError(err, claimed);
      const at = deps.clock.now();
      let res: TransitionResult;
      if (next.to === 'unknown') {
        res = await markUnresolved(deps, claimed, 'unknown', at, {
          reason: err.code,
          ...(next.seen ? { patch: { seenAtGateway: claimed.seenAtGateway ?? at } } : {}),
        });
      } else {
        res = await deps.store.transition(claimed.key, next.to, at, {
          expectAttempt: claimed.attempt,
          ...heldClaim(claimed),
          reason: err.code,
          ...(next.to === 'failed'
            ? { patch: { reason: next.reason, message: err.message.slice(0, 200) } }
            : {}),
        });
        log.info(
          {
            key: claimed.key,
            reference: claimed.reference,
            to: next.to,
            code: err.code,
            ok: res.ok,
          },
          'submission not completed',
        );
      }
      // A replaced claim's error is nobody's: rethrown it would retry or re-run this job. A
      // credentials refusal is still rethrown: it pauses the queue for every job alike.
      if (claimReplaced(log, claimed, res, err.code) && !err.authFailure)
        return { skipped: 'claim_replaced' };
      throw err;
    }
    if (submitAnswerNeedsVerify(outcome, claimed)) {
      // A failed answer to a resubmission may be about the repetition, not the money: verify.
      const at = deps.clock.now();
      const res = await markUnresolved(deps, claimed, 'unknown', at, {
        reason: 'verify_failed_answer',
        patch: { seenAtGateway: claimed.seenAtGateway ?? at },
      });
      if (claimReplaced(log, claimed, res, outcome.status)) return { skipped: 'claim_replaced' };
      return { status: outcome.status, verifying: true };
    }
    const res = await applyOutcome(deps, claimed, outcome, deps.clock.now());
    if (claimReplaced(log, claimed, res, outcome.status)) return { skipped: 'claim_replaced' };
    return { status: outcome.status };
  };
}
