/**
 * Intent keys, attempt references and payment event ids: derived, never random, so that a replayed
 * job or a lost write re-derives the same reference and the gateway's duplicate check stops a
 * second charge. This file is the one place that derives them; the intent store's Lua scripts are
 * handed what they write.
 */
import { z } from 'zod';
import type { IntentState } from './intent.ts';

/** A payment intent's stable key: `sub_…`, `bat_…` or `api_…`. */
export type IntentKey = string & { readonly __brand: 'IntentKey' };
/** One gateway submission of an intent: `<intentKey>_<n>`; the idempotency key at Sayswitch. */
export type AttemptReference = string & { readonly __brand: 'AttemptReference' };

/** Sayswitch references: at most 64 characters of `[A-Za-z0-9_-]`. */
export const REFERENCE_MAX_LENGTH = 64;
/** Room left for `_<n>` with n up to 99999. */
export const INTENT_KEY_MAX_LENGTH = REFERENCE_MAX_LENGTH - 6;
export const MAX_ATTEMPTS = 99_999;

const SAFE = /^[A-Za-z0-9_-]+$/;
/** Schema for an id that becomes part of an intent key (subscription id, batch id, row reference, API key). */
export const idComponentSchema = (label: string, max: number) =>
  z
    .string()
    .min(1, `${label} is empty`)
    .max(max, `${label} is longer than ${max} characters`)
    .regex(SAFE, `${label} may contain only letters, digits, "_" and "-"`);

export const SUBSCRIPTION_ID_MAX = 40;
export const BATCH_ID_MAX = 20;
export const ROW_REFERENCE_MAX = 32;
export const API_KEY_MAX = 50;

const INTENT_KEY_PATTERN = /^(?:rf\d{1,2}_)?(sub|bat|api)_[A-Za-z0-9_-]+$/;

/** A payment's key (at most {@link INTENT_KEY_MAX_LENGTH}) or a refund's (`rf<n>_<key>`, at most 62). */
export const intentKeySchema = z
  .string()
  .max(REFERENCE_MAX_LENGTH - 2)
  .regex(INTENT_KEY_PATTERN, 'not an intent key')
  .refine((s) => s.startsWith('rf') || s.length <= INTENT_KEY_MAX_LENGTH, 'not an intent key')
  .transform((s) => s as IntentKey);

/** What {@link intentKeySchema} accepts, without zod (a job payload's hot path). */
export function isIntentKey(s: string): s is IntentKey {
  return (
    s.length <= REFERENCE_MAX_LENGTH - 2 &&
    INTENT_KEY_PATTERN.test(s) &&
    (s.startsWith('rf') || s.length <= INTENT_KEY_MAX_LENGTH)
  );
}

function checked(key: string): IntentKey {
  if (key.length > INTENT_KEY_MAX_LENGTH || !SAFE.test(key)) {
    throw new RangeError(`derived intent key is invalid: ${key}`);
  }
  return key as IntentKey;
}

/** `sub_<subscriptionId>_<periodStart yyyymmdd>`; `periodStartYmd` is in the subscription's zone. */
export function subscriptionIntentKey(subscriptionId: string, periodStartYmd: string): IntentKey {
  if (!/^\d{8}$/.test(periodStartYmd))
    throw new RangeError(`period start must be yyyymmdd: ${periodStartYmd}`);
  return checked(`sub_${subscriptionId}_${periodStartYmd}`);
}

/**
 * Whether `batchId` may name a new batch: no `_`. The first `_` after `bat_` must end the batch id
 * in {@link batchIntentKey}, since a row reference may hold `_` itself: otherwise batch `pay` with
 * reference `2024_1` and batch `pay_2024` with reference `1` would share `bat_pay_2024_1`.
 * Batches stored before this rule may hold `_` in their id; they are read and resumed as before.
 */
export function isNewBatchId(batchId: string): boolean {
  return !batchId.includes('_');
}

/** `bat_<batchId>_<row reference, or line number>`. */
export function batchIntentKey(batchId: string, rowReferenceOrLine: string | number): IntentKey {
  return checked(`bat_${batchId}_${rowReferenceOrLine}`);
}

/** `api_<key>`. */
export function apiIntentKey(callerKey: string): IntentKey {
  return checked(`api_${callerKey}`);
}

/** `<intentKey>_<n>`, n from 1. */
export function attemptReference(key: IntentKey, n: number): AttemptReference {
  if (!Number.isInteger(n) || n < 1 || n > MAX_ATTEMPTS)
    throw new RangeError(`attempt number out of range: ${n}`);
  return `${key}_${n}` as AttemptReference;
}

/**
 * The id of the payment event a transition of attempt `reference` into `to` publishes:
 * `evt_<intentKey>_<n>_<to>`. One per attempt and state, so consumers de-duplicate replays by id.
 */
export function paymentEventId(reference: AttemptReference, to: IntentState): string {
  return `evt_${reference}_${to}`;
}

/** Splits a reference back into its intent key and attempt number, or undefined if it is not ours. */
export function parseAttemptReference(
  ref: string,
): { key: IntentKey; attempt: number } | undefined {
  const m = /^((?:sub|bat|api)_[A-Za-z0-9_-]+)_(\d{1,5})$/.exec(ref);
  if (!m || ref.length > REFERENCE_MAX_LENGTH) return undefined;
  return { key: m[1] as IntentKey, attempt: Number(m[2]) };
}

/** Refunds of one charge: at most this many, numbered 1… (docs/refunds.md). */
export const MAX_REFUNDS_PER_CHARGE = 99;

/**
 * A refund's intent key: `rf<n>_<chargeKey>`, n from 1 (docs/refunds.md). The prefix can never
 * be a charge's (those start `sub_`, `bat_` or `api_`), so a caller's key cannot collide with a
 * refund's, and the key is at most 5 + 57 characters, so its reference `<key>_1` fits Sayswitch's
 * 64.
 */
export function refundIntentKey(chargeKey: string, n: number): IntentKey {
  if (!Number.isInteger(n) || n < 1 || n > MAX_REFUNDS_PER_CHARGE)
    throw new RangeError(`refund number out of range: ${n}`);
  const key = `rf${n}_${chargeKey}`;
  if (key.length > REFERENCE_MAX_LENGTH - 2 || !SAFE.test(key))
    throw new RangeError(`derived refund key is invalid: ${key}`);
  return key as IntentKey;
}

/**
 * Splits a refund's attempt reference (`rf<n>_<chargeKey>_<attempt>`) into the charge's key, the
 * refund's number and the attempt, or undefined if it is not one.
 */
export function parseRefundReference(
  ref: string,
): { chargeKey: string; n: number; attempt: number } | undefined {
  const m = /^(rf\d{1,2}_[A-Za-z0-9_-]+)_(\d{1,5})$/.exec(ref);
  if (!m || ref.length > REFERENCE_MAX_LENGTH) return undefined;
  const refund = parseRefundKey(m[1] as string);
  return refund && { ...refund, attempt: Number(m[2]) };
}

/** Splits a refund's intent key into the charge's key and the refund's number, or undefined. */
export function parseRefundKey(key: string): { chargeKey: string; n: number } | undefined {
  const m = /^rf(\d{1,2})_((?:sub|bat|api)_[A-Za-z0-9_-]+)$/.exec(key);
  if (!m) return undefined;
  return { n: Number(m[1]), chargeKey: m[2] as string };
}
