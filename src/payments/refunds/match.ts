/**
 * Which of the refunds Sayswitch lists for a transaction is ours (docs/refunds.md "Matching"):
 * pure, no I/O. Sayswitch's refund request carries only the transaction's reference, so a
 * refund whose answer was lost can be found only among the transaction's refunds. At most one
 * refund of a charge is at the gateway at a time (the slot), so ours is the one refund listed that
 * no other refund of the charge has recorded as its own, unless Sayswitch echoes our
 * `merchant_reference`, which identifies it outright.
 */
import { parseRefundReference } from '../../kernel/ids.ts';
import type { GatewayRefund } from '../../kernel/ports.ts';

/**
 * Whether `merchantReference` is another refund's of our charge (an echo of its reference, ours
 * being {@link OwnRefund.reference}): a refund that is not ours.
 */
function isSiblingReference(merchantReference: string, own: Pick<OwnRefund, 'reference'>) {
  const charge = parseRefundReference(own.reference)?.chargeKey;
  return (
    merchantReference !== own.reference &&
    charge !== undefined &&
    parseRefundReference(merchantReference)?.chargeKey === charge
  );
}

/** What the list says of our refund. */
export type RefundMatch =
  /** This listed refund is ours. */
  | { found: GatewayRefund }
  /** None of the listed refunds can be ours: the gateway shows no refund of our request. */
  | { found: undefined }
  /** More than one could be ours, or the list cannot be attributed: nothing is proven. */
  | { ambiguous: string };

/** Our refund as the matcher needs it. */
export interface OwnRefund {
  /** Our attempt reference, sent as `merchant_reference`. */
  reference: string;
  amount: number;
  /** Whether the charge's other sent refunds that are not `failed` all recorded Sayswitch's reference. */
  othersAllKnown: boolean;
  /** How many of the charge's other sent refunds are `failed` without Sayswitch's reference. */
  othersFailedUnknown: number;
  /** Sayswitch references the charge's other refunds recorded. */
  othersGatewayReferences: ReadonlySet<string>;
}

/**
 * Finds our refund among `listed`. An echo of our reference wins; otherwise the refunds nobody
 * else recorded (by Sayswitch's reference, or by echoing another refund's of the charge) are the
 * candidates: none → not found, one → ours (unless its amount says it is not), more → ambiguous.
 * A candidate that does not say whose it is proves nothing: one echoing a `merchant_reference`
 * that is no refund's of the charge, or one listed without its Sayswitch reference while a
 * reference another refund recorded is not listed (it may be that one). When another refund of
 * the charge never recorded Sayswitch's reference, a candidate may be that one: ambiguous unless
 * there is no candidate (a failed one without its reference makes only a failed candidate
 * ambiguous).
 */
export function matchRefund(listed: readonly GatewayRefund[], own: OwnRefund): RefundMatch {
  const echoed = listed.find((r) => r.merchantReference === own.reference);
  if (echoed) return { found: echoed };
  const candidates = listed.filter(
    (r) =>
      (r.gatewayReference === undefined || !own.othersGatewayReferences.has(r.gatewayReference)) &&
      (r.merchantReference === undefined || !isSiblingReference(r.merchantReference, own)),
  );
  if (candidates.length === 0) return { found: undefined };
  // A `merchant_reference` that is neither ours nor another refund's of the charge is not our echo
  // (what Sayswitch puts there is undocumented): it does not say whose refund it is, so it can
  // neither be ruled out as ours ("not found" would resend a refund that landed) nor adopted.
  const foreign = candidates.find((r) => r.merchantReference !== undefined);
  if (foreign)
    return {
      ambiguous: `a refund is listed with merchant_reference ${foreign.merchantReference}, neither ours nor another refund's of the charge`,
    };
  // A listed refund without its Sayswitch reference may be one another refund of the charge
  // recorded, unless every reference recorded is listed too: it is no one's in particular.
  if (candidates.some((r) => r.gatewayReference === undefined)) {
    const shown = new Set(listed.map((r) => r.gatewayReference));
    if ([...own.othersGatewayReferences].some((rf) => !shown.has(rf)))
      return {
        ambiguous: 'a refund is listed without its Sayswitch reference and could be another one',
      };
  }
  if (!own.othersAllKnown)
    return { ambiguous: 'another refund of the charge has no Sayswitch reference recorded' };
  if (candidates.length > 1)
    return { ambiguous: `${candidates.length} refunds of the transaction could be ours` };
  const only = candidates[0] as GatewayRefund;
  if (only.status === 'failed' && own.othersFailedUnknown > 0)
    return {
      ambiguous: 'a failed refund is listed and another failed refund of the charge could be it',
    };
  if (only.amount !== undefined && only.amount !== own.amount)
    return {
      ambiguous: `the only unclaimed refund is of ${only.amount}, ours is of ${own.amount}`,
    };
  return { found: only };
}
