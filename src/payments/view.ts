/** The public view of one payment (HTTP `GET /payments/:reference`, `billing payments show`). */
import { apiIntentKey, isIntentKey, parseAttemptReference } from '../kernel/ids.ts';
import { formatMajor } from '../kernel/money.ts';
import type { Intent, IntentHistoryEntry } from '../kernel/payment.ts';
import type { IntentStore } from '../kernel/ports.ts';

export interface PaymentView {
  key: string;
  type: string;
  state: string;
  amount: string;
  amountMinor: number;
  currency: string;
  fee?: string;
  reason?: string;
  message?: string;
  gatewayReference?: string;
  /** While `requires_action`: where the customer completes the 3-D Secure challenge. */
  authorizationUrl?: string;
  batchId?: string;
  subscriptionId?: string;
  /**
   * When the payment was created while a Redis data loss was unacknowledged (ISO time): its
   * references may predate the loss, so every refusal is verified (Intent.afterDataLoss).
   */
  afterDataLoss?: string;
  attempts: { reference: string; state: string }[];
  history: IntentHistoryEntry[];
  createdAt: string;
  updatedAt: string;
}

export function toView(intent: Intent, history: IntentHistoryEntry[]): PaymentView {
  const attempts: PaymentView['attempts'] = [];
  // Attempt n+1 exists only once attempt n failed: earlier attempts are failed by construction.
  for (let n = 1; n <= intent.attempt; n++) {
    attempts.push({
      reference: `${intent.key}_${n}`,
      state: n === intent.attempt ? intent.state : 'failed',
    });
  }
  return {
    key: intent.key,
    type: intent.type,
    state: intent.state,
    amount: formatMajor(intent.amount),
    amountMinor: intent.amount,
    currency: intent.currency,
    ...(intent.fee !== undefined ? { fee: formatMajor(intent.fee) } : {}),
    ...(intent.reason !== undefined ? { reason: intent.reason } : {}),
    ...(intent.message !== undefined ? { message: intent.message } : {}),
    ...(intent.gatewayReference !== undefined ? { gatewayReference: intent.gatewayReference } : {}),
    // The card authorization (`authorizationSealed`) is never part of a view.
    ...(intent.state === 'requires_action' && intent.authorizationUrl !== undefined
      ? { authorizationUrl: intent.authorizationUrl }
      : {}),
    ...(intent.batchId !== undefined ? { batchId: intent.batchId } : {}),
    ...(intent.subscriptionId !== undefined ? { subscriptionId: intent.subscriptionId } : {}),
    ...(intent.afterDataLoss !== undefined
      ? { afterDataLoss: new Date(intent.afterDataLoss).toISOString() }
      : {}),
    attempts,
    history,
    createdAt: new Date(intent.createdAt).toISOString(),
    updatedAt: new Date(intent.updatedAt).toISOString(),
  };
}

/** The intent of an API payment by the caller's own key (none when that is no valid key). */
async function ownKey(store: IntentStore, callerKey: string): Promise<Intent | undefined> {
  let key: string;
  try {
    key = apiIntentKey(callerKey);
  } catch {
    return undefined;
  }
  return store.get(key);
}

/**
 * Finds a payment's intent by intent key, attempt reference, or the caller's own key of an API
 * payment (`order-1001` for the intent `api_order-1001`), in that order. An intent key is taken as
 * itself first: `api_inv_2` is the intent of the caller key `inv_2` when there is one, and attempt
 * 2 of `api_inv` only when there is not and `api_inv` has made a second attempt. The one place a
 * name becomes a payment: lookups, refunds and resolutions all go through it.
 */
export async function findIntent(
  store: IntentStore,
  reference: string,
): Promise<Intent | undefined> {
  // Only a name that can be an intent key is read as one: `<key>:history` is another key's list.
  const exact = isIntentKey(reference) ? await store.get(reference) : undefined;
  if (exact) return exact;
  const attempt = parseAttemptReference(reference);
  if (attempt) {
    const intent = await store.get(attempt.key);
    if (intent && attempt.attempt <= intent.attempt) return intent;
  }
  return ownKey(store, reference);
}

/** {@link findIntent}, as its view. */
export async function findPayment(
  store: IntentStore,
  reference: string,
): Promise<PaymentView | undefined> {
  const intent = await findIntent(store, reference);
  if (!intent) return undefined;
  return toView(intent, await store.history(intent.key));
}
