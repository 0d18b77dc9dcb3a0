/**
 * `GET /payments` and `billing payments list` (docs/operations.md, "Finding payments"): filters
 * and cursor pagination over the store's indexes (store/intent-list.ts). The query is validated
 * here once for both edges: an unknown parameter, a bad state or date is refused naming it.
 */
import { z } from 'zod';
import { INTENT_STATES, INTENT_TYPES } from '../kernel/intent.ts';
import { CURRENCIES, formatMajor } from '../kernel/money.ts';
import type { Intent } from '../kernel/payment.ts';
import type { UnreadableRecordError } from '../kernel/errors.ts';
import type { Log } from '../kernel/log.ts';
import type { IntentFilter, IntentStore } from '../kernel/ports.ts';

export const LIST_LIMIT_DEFAULT = 50;
export const LIST_LIMIT_MAX = 200;

const instant = (name: string) =>
  z
    .string()
    .refine((s) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d{2}-\d{2}/.test(s), {
      message: `${name} must be an ISO 8601 date or instant, e.g. 2026-12-01 or 2026-12-01T09:00:00Z`,
    })
    .transform((s) => Date.parse(s));

/** The list's query parameters (HTTP query string, CLI flags). Unknown names are refused. */
export const paymentListQuerySchema = z.strictObject({
  state: z.enum(INTENT_STATES).optional(),
  type: z.enum(INTENT_TYPES).optional(),
  batch: z.string().min(1).max(200).optional(),
  subscription: z.string().min(1).max(200).optional(),
  currency: z.enum(CURRENCIES).optional(),
  /** The customer's email of a charge (compared ignoring case). */
  email: z
    .string()
    .trim()
    .min(3)
    .max(320)
    .includes('@', { message: 'email must contain @' })
    .optional(),
  created_after: instant('created_after').optional(),
  created_before: instant('created_before').optional(),
  limit: z.coerce.number().int().min(1).max(LIST_LIMIT_MAX).default(LIST_LIMIT_DEFAULT),
  cursor: z.string().min(1).max(2_000).optional(),
});
export type PaymentListQuery = z.infer<typeof paymentListQuerySchema>;

/** One payment in a list: what identifies it and where it stands (the full view is GET /payments/:key). */
export interface PaymentSummary {
  key: string;
  reference: string;
  type: string;
  state: string;
  amount: string;
  amountMinor: number;
  currency: string;
  reason?: string;
  batchId?: string;
  subscriptionId?: string;
  createdAt: string;
  updatedAt: string;
}

/** A payment on a page that this version cannot read: its key and what is wrong, never its content. */
export interface UnreadablePayment {
  key: string;
  why: string;
}

export interface PaymentList {
  data: PaymentSummary[];
  /**
   * The keys on this page whose intent this version cannot read (another version's shape, a hand
   * edit), left out of `data`; absent when there is none.
   */
  unreadable?: UnreadablePayment[];
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

export function toSummary(i: Intent): PaymentSummary {
  return {
    key: i.key,
    reference: i.reference,
    type: i.type,
    state: i.state,
    amount: formatMajor(i.amount),
    amountMinor: i.amount,
    currency: i.currency,
    ...(i.reason !== undefined ? { reason: i.reason } : {}),
    ...(i.batchId !== undefined ? { batchId: i.batchId } : {}),
    ...(i.subscriptionId !== undefined ? { subscriptionId: i.subscriptionId } : {}),
    createdAt: new Date(i.createdAt).toISOString(),
    updatedAt: new Date(i.updatedAt).toISOString(),
  };
}

/** Logs `err` (one error line by key, with what is wrong) and answers what a page shows of it. */
export function reportUnlisted(log: Log, err: UnreadableRecordError): UnreadablePayment {
  log.error(
    { key: err.id, why: err.why },
    'payment cannot be read by this version: left out of the list',
  );
  return { key: err.id, why: err.why };
}

/**
 * One page of the list. An intent this version cannot read never fails the page: it is left out
 * of `data`, named in `unreadable` for whoever reads the page, and logged (one error line by key
 * with what is wrong, never the record's content).
 */
export async function listPayments(
  store: IntentStore,
  q: PaymentListQuery,
  log: Log,
): Promise<PaymentList> {
  const filter: IntentFilter = {
    ...(q.state !== undefined ? { state: q.state } : {}),
    ...(q.type !== undefined ? { type: q.type } : {}),
    ...(q.batch !== undefined ? { batchId: q.batch } : {}),
    ...(q.subscription !== undefined ? { subscriptionId: q.subscription } : {}),
    ...(q.currency !== undefined ? { currency: q.currency } : {}),
    ...(q.email !== undefined ? { email: q.email.toLowerCase() } : {}),
    ...(q.created_after !== undefined ? { createdAfter: q.created_after } : {}),
    ...(q.created_before !== undefined ? { createdBefore: q.created_before } : {}),
  };
  const page = await store.list(filter, q.limit, q.cursor);
  const unreadable = (page.unreadable ?? []).map((u) => reportUnlisted(log, u));
  return {
    data: page.intents.map(toSummary),
    ...(unreadable.length > 0 ? { unreadable } : {}),
    next_cursor: page.next ?? null,
  };
}
