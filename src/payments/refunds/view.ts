/**
 * The refunds of one charge as the API and the CLI show them (`GET /payments/:key/refunds`,
 * `billing payments refunds`): what was charged, refunded, in flight and still refundable.
 */
import { formatMajor, type AmountMinor } from '../../kernel/money.ts';
import type { Intent } from '../../kernel/payment.ts';
import type { IntentStore, RefundStore } from '../../kernel/ports.ts';
import { findIntent, toView, type PaymentView } from '../view.ts';

/**
 * Whether `intent` can be refunded at all: a charge that succeeded. The rule RESERVE_REFUND
 * (store/refund-lua.ts) applies when it reserves; read here for what is shown and for which
 * refusal a request gets first, never to let a refund through.
 */
export function isRefundable(intent: Pick<Intent, 'type' | 'state'>): boolean {
  return intent.type === 'charge' && intent.state === 'succeeded';
}

/** A refund: the payment view plus the charge it refunds, the caller's reason and who asked. */
export interface RefundView extends PaymentView {
  chargeKey: string;
  reason?: string;
  /** The token's name or `cli:<os user>`; absent on refunds stored before it was recorded. */
  requestedBy?: string;
}

export interface ChargeRefundsView {
  chargeKey: string;
  currency: string;
  chargedMinor: number;
  /** Refunds Sayswitch confirmed. */
  refundedMinor: number;
  /** Refunds reserved and not final: not refundable again unless they fail. */
  inFlightMinor: number;
  refundableMinor: number;
  /** `refunded` once refunds confirmed cover the charge. */
  status: 'not_refunded' | 'partially_refunded' | 'refunded';
  refunds: RefundView[];
}

/** A refund intent's view. */
export function toRefundView(intent: Intent, history: PaymentView['history']): RefundView {
  const view = toView(intent, history);
  if (intent.payee.kind !== 'refund') return { ...view, chargeKey: '' };
  const { chargeKey, reason, requestedBy } = intent.payee;
  return {
    ...view,
    chargeKey,
    ...(reason !== undefined ? { reason } : {}),
    ...(requestedBy !== undefined ? { requestedBy } : {}),
  };
}

/** Sums of a charge's refunds (pure). */
export function refundTotals(
  chargedMinor: number,
  refunds: readonly Pick<Intent, 'state' | 'amount'>[],
) {
  let refundedMinor = 0;
  let inFlightMinor = 0;
  for (const r of refunds) {
    if (r.state === 'succeeded') refundedMinor += r.amount;
    else if (r.state !== 'failed') inFlightMinor += r.amount;
  }
  const status: ChargeRefundsView['status'] =
    refundedMinor === 0
      ? 'not_refunded'
      : refundedMinor >= chargedMinor
        ? 'refunded'
        : 'partially_refunded';
  return {
    refundedMinor,
    inFlightMinor,
    refundableMinor: Math.max(0, chargedMinor - refundedMinor - inFlightMinor),
    status,
  };
}

/** The charge `reference` (key, reference or caller key) and its refunds; undefined if no such payment. */
export async function chargeRefunds(
  deps: { store: IntentStore; refunds: RefundStore },
  reference: string,
): Promise<ChargeRefundsView | undefined> {
  const charge = await findIntent(deps.store, reference);
  if (!charge) return undefined;
  const refunds = await deps.refunds.refundsOf(charge.key);
  const views = await Promise.all(
    refunds.map(async (r) => toRefundView(r, await deps.store.history(r.key))),
  );
  const totals = refundTotals(charge.amount, refunds);
  return {
    chargeKey: charge.key,
    currency: charge.currency,
    chargedMinor: charge.amount,
    ...totals,
    // A payout, or a charge that has not succeeded (or was reversed): nothing to refund.
    refundableMinor: isRefundable(charge) ? totals.refundableMinor : 0,
    refunds: views,
  };
}

/** Major-unit text of an amount, for CLI lines. */
export const major = (minor: number): string => formatMajor(minor as AmountMinor);
