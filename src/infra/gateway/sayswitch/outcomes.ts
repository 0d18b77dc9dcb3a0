/**
 * Parsed transaction and payout bodies read as domain outcomes (`GatewayOutcome`): the status word
 * through status.ts, the decline reason from the gateway's own words, amounts and fees kept apart.
 * Shared by submissions (the immediate answer) and lookups (verify, payout lookup).
 */
import type { FailureReason } from '../../../kernel/intent.ts';
import type { GatewayOutcome } from '../../../kernel/ports.ts';
import { referenceMismatchError } from './error-mapping/response-errors.ts';
import type { ChargeResponse, PayoutData, TransactionData } from './schemas.ts';
import { readStatusWord, type SayswitchStatus } from './status.ts';

/**
 * Gateway phrases that mean "insufficient funds", matched case-insensitively as substrings of
 * `gateway_response` or `message`. Every other decline reads as `declined`. Sayswitch publishes no
 * decline codes, so this list is the whole of what we distinguish; extend it when a new phrase is
 * seen in production (the raw text is always kept in `message`).
 */
const INSUFFICIENT_FUNDS_PHRASES: readonly string[] = [
  'insufficient fund',
  'insufficient balance',
  'not sufficient funds',
  'no sufficient funds',
  'insufficient wallet balance',
];

/**
 * Decides the failure reason of a decline from the gateway's own words: `insufficient_funds` when
 * any of `texts` contains a known phrase, else `declined`.
 */
export function declineReason(...texts: (string | undefined)[]): FailureReason {
  for (const text of texts) {
    if (text === undefined) continue;
    const lower = text.toLowerCase();
    if (INSUFFICIENT_FUNDS_PHRASES.some((p) => lower.includes(p))) return 'insufficient_funds';
  }
  return 'declined';
}

/**
 * A charge body with a status and no continuation link. Anything else (3DS / OTP still to come)
 * waits on the customer, so the charge is pending.
 */
export function isSettledTransaction(data: ChargeResponse['data']): data is TransactionData {
  return typeof data === 'object' && typeof data.status === 'string' && data._links === undefined;
}

/**
 * The status word as the client reads it: a word not in the table is non-final (`pending`) so
 * that the reconciler keeps asking rather than closing a payment on a word we do not know.
 */
function clientStatus(word: string): SayswitchStatus {
  return readStatusWord(word) ?? 'pending';
}

function checkReference(
  reference: string,
  data: { reference?: string | undefined },
  endpoint: string,
): void {
  // An answer about another reference is not an answer about ours.
  if (data.reference !== undefined && data.reference !== reference) {
    throw referenceMismatchError(endpoint);
  }
}

/**
 * Reads a charge (initialize or verify answer) as an outcome. A charge has no reversed state in
 * the domain (payouts only), so `reversed` stays non-final (`pending`) for a human to look at.
 * @throws BillingError (outcome_unknown, `reference_mismatch`) when the body is about another
 * reference; `endpoint` (the path template) names the call in that error.
 */
export function transactionOutcome(
  reference: string,
  data: TransactionData,
  message: string | undefined,
  endpoint: string,
): GatewayOutcome {
  checkReference(reference, data, endpoint);
  const base = { reference, ...(data.id !== undefined ? { gatewayReference: data.id } : {}) };
  const status = clientStatus(data.status);
  switch (status) {
    case 'succeeded': {
      const amount = data.requested_amount ?? data.amount;
      return {
        ...base,
        status: 'succeeded',
        ...(amount !== undefined ? { amount } : {}),
        ...(data.fees !== undefined ? { fee: data.fees } : {}),
      };
    }
    case 'failed':
    case 'canceled':
      return unsettled(status, base, data.gateway_response, message);
    case 'reversed':
    case 'pending':
      return unsettled('pending', base, data.gateway_response, message);
  }
}

/**
 * Reads a payout (bank_transfer or payout lookup answer) as an outcome.
 * @throws BillingError (outcome_unknown, `reference_mismatch`) when the body is about another
 * reference; `endpoint` (the path template) names the call in that error.
 */
export function payoutOutcome(
  reference: string,
  data: PayoutData,
  message: string | undefined,
  endpoint: string,
): GatewayOutcome {
  checkReference(reference, data, endpoint);
  const base = { reference, ...(data.id !== undefined ? { gatewayReference: data.id } : {}) };
  const status = clientStatus(data.status);
  const money = {
    ...(data.amount !== undefined ? { amount: data.amount } : {}),
    ...(data.fee !== undefined ? { fee: data.fee } : {}),
  };
  switch (status) {
    case 'succeeded':
      return { ...base, status: 'succeeded', ...money };
    case 'reversed':
      return { ...base, status: 'reversed', ...money };
    case 'failed':
    case 'canceled':
    case 'pending':
      return unsettled(status, base, data.gateway_response, message);
  }
}

/**
 * A failed, canceled or pending answer, charges and payouts alike: the gateway's own words go to
 * `message`; a failure's reason comes from them (declineReason), a cancellation's is `canceled`.
 */
function unsettled(
  status: 'failed' | 'canceled' | 'pending',
  base: { reference: string; gatewayReference?: string },
  gatewayResponse: string | undefined,
  message: string | undefined,
): GatewayOutcome {
  const text = gatewayResponse ?? message;
  const said = text !== undefined ? { message: text } : {};
  if (status === 'pending') return { ...base, status: 'pending', ...said };
  const reason = status === 'canceled' ? 'canceled' : declineReason(gatewayResponse, message);
  return { ...base, status: 'failed', reason, ...said };
}
