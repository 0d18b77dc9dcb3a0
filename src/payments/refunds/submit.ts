/**
 * Submitting a refund (docs/refunds.md), inside the one submit handler of payments/submit.ts:
 * the charge's refund slot is taken before the claim, so at most one refund of a charge is at the
 * gateway at a time; then Sayswitch is asked to refund the charge's transaction, with the amount
 * only when the refund is partial.
 */
import { OutcomeUnknownError } from '../../kernel/errors.ts';
import { parseRefundKey } from '../../kernel/ids.ts';
import type { Intent } from '../../kernel/payment.ts';
import type { GatewayOutcome, PaymentGateway, RefundStore } from '../../kernel/ports.ts';
import { DelayRequest, type JobLog } from '../../infra/queues/processor.ts';
import { refundPayee } from './lookup.ts';
import { ownRefundOutcome } from './outcome.ts';

export interface RefundSubmitDeps {
  gateway: PaymentGateway;
  refunds: RefundStore;
}

/**
 * For a refund's submit job: takes the charge's refund slot, or delays the job by `retryMs` while
 * another refund of the charge is not final. A no-op for any other intent.
 */
export async function takeRefundSlot(
  deps: RefundSubmitDeps,
  key: string,
  now: number,
  retryMs: number,
  log: JobLog,
): Promise<void> {
  const refund = parseRefundKey(key);
  if (!refund) return;
  const slot = await deps.refunds.takeSlot(refund.chargeKey, key);
  if (slot.ok) return;
  log.info(
    { key, chargeKey: refund.chargeKey, holder: slot.holder, holderState: slot.state },
    'another refund of the charge is in flight: waiting',
  );
  throw new DelayRequest(now + retryMs);
}

/**
 * Asks Sayswitch to refund the charge. An answer naming a refund another refund of this charge
 * already recorded is about that refund, not ours: the outcome is unknown and verified.
 */
export async function submitRefund(
  deps: RefundSubmitDeps,
  intent: Intent,
): Promise<GatewayOutcome> {
  const payee = refundPayee(intent);
  const answer = await deps.gateway.refund({
    reference: intent.reference,
    transactionReference: payee.chargeReference,
    ...(intent.amount !== payee.chargedMinor ? { amount: intent.amount } : {}),
    currency: intent.currency,
    ...(payee.reason !== undefined ? { reason: payee.reason } : {}),
  });
  const rf = answer.gatewayReference;
  if (rf !== undefined) {
    const others = await deps.refunds.refundsOf(payee.chargeKey);
    if (others.some((r) => r.key !== intent.key && r.gatewayReference === rf)) {
      throw new OutcomeUnknownError(
        `Sayswitch answered the refund with ${rf}, which another refund of the charge recorded`,
        'refund_answer_not_ours',
      );
    }
  }
  return ownRefundOutcome(intent, answer);
}
