/**
 * The sandbox's answers as data, with no HTTP framework types: the `ApiResult` every handler
 * returns, failure envelopes, and the transaction and payout bodies shared by submissions,
 * lookups and webhooks (docs/sayswitch-wire.md).
 */
import type { z } from 'zod';
import { formatMajor, type AmountMinor } from '../kernel/money.ts';
import type { LedgerStatus, StoredEntry } from './ledger.ts';

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

export function chargeData(ref: string, e: StoredEntry): Record<string, unknown> {
  return {
    reference: ref,
    amount: major(e.amount + e.feeMinor),
    requested_amount: major(e.amount),
    fees: major(e.feeMinor),
    currency: e.currency,
    status: e.status,
    gateway_response: e.gatewayResponse,
    channel: 'card',
    domain: 'test',
    transaction_date: iso(e.createdAtMs),
  };
}

export function payoutData(ref: string, e: StoredEntry): Record<string, unknown> {
  return {
    reference: ref,
    amount: major(e.amount),
    fee: major(e.feeMinor),
    currency: e.currency,
    status: e.status,
    gateway_response: e.gatewayResponse,
    domain: 'test',
    created_at: iso(e.createdAtMs),
    updated_at: iso(e.updatedAtMs),
  };
}

/** The 200 answer of a charge that was not challenged. */
export function chargeAnswer(ref: string, e: StoredEntry): ApiResult {
  return {
    status: 200,
    body: { status: true, message: CHARGE_MESSAGE[e.status], data: chargeData(ref, e) },
  };
}

/** The 200 answer of a payout; `details` are what the request carried (absent: not kept). */
export function payoutAnswer(ref: string, e: StoredEntry, details?: PayoutDetails): ApiResult {
  return {
    status: 200,
    body: { success: true, message: PAYOUT_MESSAGE, data: { ...payoutData(ref, e), ...details } },
  };
}
