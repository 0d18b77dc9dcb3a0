/**
 * Verifying a refund (the reconciler's lookup for a refund intent, docs/refunds.md): by
 * Sayswitch's `RF_…` reference when the refund recorded one, else among the refunds Sayswitch
 * lists for the charge's transaction (match.ts). Only a list that shows none of the transaction's
 * refunds to be ours is a `not_found`, which resubmission.ts then weighs like any other.
 */
import type { Intent, RefundPayee } from '../../kernel/payment.ts';
import type { LookupOutcome, PaymentGateway, RefundStore } from '../../kernel/ports.ts';
import { matchRefund } from './match.ts';
import { ownRefundOutcome } from './outcome.ts';

export interface RefundLookupDeps {
  gateway: PaymentGateway;
  refunds: RefundStore;
}

/** The refund's payee, or a loud error for an intent that is no refund. */
export function refundPayee(intent: Intent): RefundPayee {
  if (intent.payee.kind !== 'refund') throw new TypeError(`${intent.key} is not a refund`);
  return intent.payee;
}

/**
 * What Sayswitch says of the refund's attempt. An ambiguous list is reported as `pending` with the
 * reason in `message`: the refund stays checked on its schedule and ends in `needs_review`, never
 * resubmitted.
 */
export async function lookupRefund(deps: RefundLookupDeps, intent: Intent): Promise<LookupOutcome> {
  if (intent.gatewayReference !== undefined) {
    const found = await deps.gateway.refundStatus(intent.gatewayReference);
    // Sayswitch gave us this reference: not knowing it now proves nothing (seen at the gateway).
    return found
      ? ownRefundOutcome(intent, found)
      : { status: 'not_found', reference: intent.reference };
  }
  const payee = refundPayee(intent);
  const listed = await deps.gateway.refundsOf(payee.chargeReference);
  // The charge's other refunds that were ever handed to the gateway.
  const others = (await deps.refunds.refundsOf(payee.chargeKey)).filter(
    (r) => r.key !== intent.key && r.sentAt !== undefined,
  );
  const known = new Set(others.flatMap((r) => (r.gatewayReference ? [r.gatewayReference] : [])));
  const unknown = others.filter((r) => r.gatewayReference === undefined);
  const match = matchRefund(listed, {
    reference: intent.reference,
    amount: intent.amount,
    othersAllKnown: unknown.every((r) => r.state === 'failed'),
    othersFailedUnknown: unknown.length,
    othersGatewayReferences: known,
  });
  if ('ambiguous' in match)
    return { status: 'pending', reference: intent.reference, message: match.ambiguous };
  return match.found
    ? ownRefundOutcome(intent, match.found)
    : { status: 'not_found', reference: intent.reference };
}
