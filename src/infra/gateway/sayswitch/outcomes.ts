/**
 * Parsed transaction and payout bodies read as domain outcomes (`GatewayOutcome`): the status word
 * through status.ts, the decline reason from the gateway's own words, amounts and fees kept apart.
 * Shared by submissions (the immediate answer) and lookups (verify, payout lookup).
 */
import type { FailureReason } from '../../../kernel/intent.ts';
import type { GatewayOutcome } from '../../../kernel/ports.ts';
import { referenceMismatchError } from './error-mapping/response-errors.ts';
import type {
  ChargeResponse,
  Links,
  PayoutData,
  TransactionData,
  VerifyResponse,
} from './schemas.ts';
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
 * Gateway phrases on a failed **charge** that mean the customer did not complete its 3-D Secure
 * challenge (the sandbox's `gateway_response` after a failed, abandoned or expired challenge:
 * "Authentication failed", "Abandoned", "Authentication expired"). Matched like the phrases above.
 */
const AUTHENTICATION_PHRASES: readonly string[] = [
  'authentication failed',
  'authentication expired',
  'authentication timed out',
  'authentication not completed',
  'not authenticated',
  'abandoned',
];

/**
 * The failure reason of a charge: {@link declineReason}, except `authentication_required` when the
 * gateway's words say the challenge was not completed (and not that funds were short).
 */
export function chargeFailureReason(...texts: (string | undefined)[]): FailureReason {
  const reason = declineReason(...texts);
  if (reason !== 'declined') return reason;
  const said = texts.filter((t): t is string => t !== undefined).map((t) => t.toLowerCase());
  return said.some((t) => AUTHENTICATION_PHRASES.some((p) => t.includes(p)))
    ? 'authentication_required'
    : reason;
}

/** A charge body with a status word (not the 3DS2 HTML string, not the OTP continuation). */
function isTransaction(data: ChargeResponse['data']): data is TransactionData {
  return typeof data === 'object' && typeof data.status === 'string';
}

/**
 * The customer-facing URL of a continuation link: an absolute http(s) URL, else undefined (the
 * outcome still says the customer must act; the URL is only where).
 */
function linkUrl(links: Links | undefined): string | undefined {
  if (links === undefined) return undefined;
  try {
    const url = new URL(links.url);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** The customer must act on a continuation link (3-D Secure challenge, OTP). */
function requiresAction(
  base: { reference: string; gatewayReference?: string },
  links: Links,
  message: string | undefined,
): GatewayOutcome {
  const authorizationUrl = linkUrl(links);
  return {
    ...base,
    status: 'requires_action',
    ...(authorizationUrl !== undefined ? { authorizationUrl } : {}),
    ...(message ? { message } : {}),
  };
}

/**
 * Reads a charge's initialize answer (or a duplicate answered with it, `200-echo`):
 * - the 3DS2 challenge (`data` an HTML string, `_links` at the top level; S2) or the older OTP
 *   step (`_links` inside `data`; S1) → `requires_action` with `_links.url` as the
 *   `authorizationUrl` and the gateway's `message`, unless `data` carries a final status word;
 * - a transaction → {@link transactionOutcome};
 * - anything else with a true envelope (an HTML `data` with no link) → `pending`.
 * @throws BillingError (outcome_unknown, `reference_mismatch`) when the transaction is about
 * another reference.
 */
export function chargeOutcome(
  reference: string,
  body: ChargeResponse,
  endpoint: string,
): GatewayOutcome {
  const { data, message } = body;
  const links = body._links ?? (typeof data === 'object' ? data._links : undefined);
  if (isTransaction(data)) {
    if (links === undefined || clientStatus(data.status) !== 'pending') {
      return transactionOutcome(reference, data, message, endpoint);
    }
    checkReference(reference, data, endpoint);
    const base = { reference, ...(data.id !== undefined ? { gatewayReference: data.id } : {}) };
    return requiresAction(base, links, message);
  }
  if (links !== undefined) return requiresAction({ reference }, links, message);
  return { reference, status: 'pending', ...(message ? { message } : {}) };
}

/**
 * The reusable card authorization a verify answer carries, if any: `authorization.authorization_code`
 * (top level, as `/api/v1/transaction/verify` documents it, or inside `data`) unless the
 * authorization says `reusable: false`, else the S2S verify's `card.token`. Undefined when none.
 * A secret: it goes into the outcome only, never into a log line or an error.
 */
export function readAuthorization(body: VerifyResponse): string | undefined {
  for (const auth of [body.authorization, body.data.authorization]) {
    if (auth?.authorization_code !== undefined && auth.reusable !== false) {
      return auth.authorization_code;
    }
  }
  return body.card?.token;
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
 * the domain (payouts only), so `reversed` stays non-final (`pending`) for a human to look at. A
 * pending charge whose body carries a continuation link (`data._links`) is `requires_action`;
 * `authorization` (verify only, {@link readAuthorization}) goes with a success.
 * @throws BillingError (outcome_unknown, `reference_mismatch`) when the body is about another
 * reference; `endpoint` (the path template) names the call in that error.
 */
export function transactionOutcome(
  reference: string,
  data: TransactionData,
  message: string | undefined,
  endpoint: string,
  authorization?: string,
): GatewayOutcome {
  checkReference(reference, data, endpoint);
  const base = { reference, ...(data.id !== undefined ? { gatewayReference: data.id } : {}) };
  const status = clientStatus(data.status);
  switch (status) {
    case 'succeeded': {
      // The amount we asked for, as the gateway recorded it: `requested_amount` only. `amount` is
      // the total charged (fee included), which is no amount of ours to compare.
      const amount = data.requested_amount;
      return {
        ...base,
        status: 'succeeded',
        ...(amount !== undefined ? { amount } : {}),
        ...(data.fees !== undefined ? { fee: data.fees } : {}),
        ...(authorization !== undefined ? { authorization } : {}),
      };
    }
    case 'failed':
    case 'canceled':
      return unsettled(status, base, data.gateway_response, message, chargeFailureReason);
    case 'pending':
      // Still waiting on the customer's challenge, when the body carries its link.
      if (data._links !== undefined) {
        return requiresAction(base, data._links, data.gateway_response ?? message);
      }
      return unsettled('pending', base, data.gateway_response, message);
    case 'reversed':
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
 * `message`; a failure's reason comes from them (`reasonOf`: declineReason, or for charges
 * chargeFailureReason), a cancellation's is `canceled`.
 */
function unsettled(
  status: 'failed' | 'canceled' | 'pending',
  base: { reference: string; gatewayReference?: string },
  gatewayResponse: string | undefined,
  message: string | undefined,
  reasonOf: (...texts: (string | undefined)[]) => FailureReason = declineReason,
): GatewayOutcome {
  const text = gatewayResponse ?? message;
  const said = text !== undefined ? { message: text } : {};
  if (status === 'pending') return { ...base, status: 'pending', ...said };
  const reason = status === 'canceled' ? 'canceled' : reasonOf(gatewayResponse, message);
  return { ...base, status: 'failed', reason, ...said };
}
