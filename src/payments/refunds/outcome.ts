/** A refund as Sayswitch shows it, read as the outcome of our refund intent's attempt. */
import type { GatewayOutcome, GatewayRefund } from '../../kernel/ports.ts';

/**
 * `succeeded` and `pending` as they are; `failed` is the gateway's own word on the refund
 * (`gateway_rejected`), nothing went back.
 */
export function refundOutcome(reference: string, r: GatewayRefund): GatewayOutcome {
  const base = {
    reference,
    ...(r.gatewayReference !== undefined ? { gatewayReference: r.gatewayReference } : {}),
  };
  switch (r.status) {
    case 'succeeded':
      return {
        ...base,
        status: 'succeeded',
        ...(r.amount !== undefined ? { amount: r.amount } : {}),
      };
    case 'failed':
      return {
        ...base,
        status: 'failed',
        reason: 'gateway_rejected',
        ...(r.message !== undefined ? { message: r.message } : {}),
      };
    case 'pending':
      return {
        ...base,
        status: 'pending',
        ...(r.message !== undefined ? { message: r.message } : {}),
      };
  }
}

/**
 * {@link refundOutcome} for our refund: a refund Sayswitch shows with another amount than ours is
 * not adopted (it moved more or less than we reserved): `pending` with the discrepancy as its
 * message, so it is checked on and handed to a person (`needs_review`), never closed.
 */
export function ownRefundOutcome(
  intent: { reference: string; amount: number },
  r: GatewayRefund,
): GatewayOutcome {
  if (r.amount !== undefined && r.amount !== intent.amount) {
    return {
      status: 'pending',
      reference: intent.reference,
      ...(r.gatewayReference !== undefined ? { gatewayReference: r.gatewayReference } : {}),
      message: `Sayswitch shows the refund for ${r.amount}, ours is for ${intent.amount}`,
    };
  }
  return refundOutcome(intent.reference, r);
}
