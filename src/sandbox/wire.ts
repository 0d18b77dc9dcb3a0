/**
 * The sandbox's answers as data, with no HTTP framework types: the `ApiResult` every handler
 * returns, failure envelopes, and the transaction and payout bodies shared by submissions,
 * lookups and webhooks (docs/sayswitch-wire.md).
 */
import type { z } from 'zod';
import { formatMajor, type AmountMinor } from '../kernel/money.ts';
import type { LedgerStatus, StoredEntry } from './ledger.ts';
import type { StatusVocabulary } from './options.ts';

/** A handler's answer. `holdMs` asks the transport to hold the response (outcome 55). */
export interface ApiResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  holdMs?: number;
}

export function fail(status: number, message: string, extra?: Record<string, unknown>): ApiResult {
  return { status, body: { success: false, message, ...extra } };
}

export function validationFailure(error: z.ZodError): ApiResult {
  const details = error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
  return fail(400, `Validation failed: ${details.join('; ')}`);
}

export const major = (minor: number): string => formatMajor(minor as AmountMinor);
export const iso = (ms: number): string => new Date(ms).toISOString();

export const INTERNAL_ERROR = fail(500, 'Internal server error');
export const RATE_LIMITED: ApiResult = {
  status: 429,
  headers: { 'retry-after': '1' },
  body: { success: false, message: 'Too many requests' },
};

export const GATEWAY_RESPONSE: Record<LedgerStatus, string> = {
  success: 'Approved',
  pending: 'Pending',
  failed: 'Failed',
  reversed: 'Reversed',
};

export const CHARGE_MESSAGE: Record<LedgerStatus, string> = {
  success: 'Charge successful',
  pending: 'Charge pending',
  failed: 'Charge failed',
  reversed: 'Charge reversed',
};

/**
 * The `gateway_response` of a charge whose 3-D Secure challenge the payer abandoned (three-ds.ts);
 * under the `extended` vocabulary such a charge says `abandoned` rather than `declined`.
 */
export const ABANDONED_RESPONSE = 'Abandoned';

/** The `extended` vocabulary, by kind: what each ledger status is called on the wire. */
const EXTENDED_WORDS: Record<StoredEntry['kind'], Record<LedgerStatus, string>> = {
  charge: {
    success: 'successful',
    failed: 'declined',
    pending: 'processing',
    reversed: 'reversed',
  },
  payout: {
    success: 'successful',
    failed: 'cancelled',
    pending: 'processing',
    reversed: 'reversed',
  },
};

/**
 * The `status` word a transaction or payout body carries (the `statusWords` unknown): under
 * `documented` the ledger's own status, byte for byte; under `extended` the other plausible
 * vocabulary, with `abandoned` for a charge whose challenge the payer abandoned. The ledger
 * (`GET /__sandbox/ledger`) keeps its statuses whatever the vocabulary.
 */
export function statusWord(
  vocabulary: StatusVocabulary,
  entry: Pick<StoredEntry, 'kind' | 'status' | 'gatewayResponse'>,
): string {
  if (vocabulary === 'documented') return entry.status;
  if (
    entry.kind === 'charge' &&
    entry.status === 'failed' &&
    entry.gatewayResponse === ABANDONED_RESPONSE
  ) {
    return 'abandoned';
  }
  return EXTENDED_WORDS[entry.kind][entry.status];
}

export const PAYOUT_MESSAGE = 'Transfer successfully logged and Processing';

/** What a payout request carried beyond the ledger entry; echoed in payout answers. */
export interface PayoutDetails {
  account_name: string;
  account_number: string;
  bank_code: string;
  bank_name: string;
  narration: string;
  paymentMode: string;
}

export function chargeData(
  ref: string,
  e: StoredEntry,
  words: StatusVocabulary,
): Record<string, unknown> {
  return {
    reference: ref,
    amount: major(e.amount + e.feeMinor),
    requested_amount: major(e.amount),
    fees: major(e.feeMinor),
    currency: e.currency,
    status: statusWord(words, e),
    gateway_response: e.gatewayResponse,
    channel: 'card',
    domain: 'test',
    transaction_date: iso(e.createdAtMs),
  };
}

export function payoutData(
  ref: string,
  e: StoredEntry,
  words: StatusVocabulary,
): Record<string, unknown> {
  return {
    reference: ref,
    amount: major(e.amount),
    fee: major(e.feeMinor),
    currency: e.currency,
    status: statusWord(words, e),
    gateway_response: e.gatewayResponse,
    domain: 'test',
    created_at: iso(e.createdAtMs),
    updated_at: iso(e.updatedAtMs),
  };
}

/** The 200 answer of a charge that was not challenged, its status in `words`. */
export function chargeAnswer(ref: string, e: StoredEntry, words: StatusVocabulary): ApiResult {
  return {
    status: 200,
    body: { status: true, message: CHARGE_MESSAGE[e.status], data: chargeData(ref, e, words) },
  };
}

/** The 200 answer of a payout; `details` are what the request carried (absent: not kept). */
export function payoutAnswer(
  ref: string,
  e: StoredEntry,
  words: StatusVocabulary,
  details?: PayoutDetails,
): ApiResult {
  return {
    status: 200,
    body: {
      success: true,
      message: PAYOUT_MESSAGE,
      data: { ...payoutData(ref, e, words), ...details },
    },
  };
}
