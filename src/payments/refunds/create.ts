/**
 * Asking for a refund of a charge (HTTP `POST /payments/:key/refunds`, `billing payments
 * refund`; docs/refunds.md). The amount is reserved against the charge atomically in Redis
 * (store/refund-lua.ts): never more than the charge in total, whatever runs concurrently. The
 * refund is persisted before its job is enqueued; repeating the request with the same caller key
 * re-adds the (deterministic) job, so a crash between the two loses nothing.
 */
import type { AmountMinor } from '../../kernel/money.ts';
import type { Clock } from '../../kernel/clock.ts';
import type {
  IntentStore,
  RefundReservationResult,
  RefundStore,
  RequestHasher,
} from '../../kernel/ports.ts';
import type { Logger } from '../../infra/logger.ts';
import type { Dispatcher } from '../../infra/queues/dispatcher.ts';
import { findIntent } from '../view.ts';
import { isRefundable } from './view.ts';

export interface RefundDeps {
  store: IntentStore;
  refunds: RefundStore;
  dispatcher: Dispatcher;
  clock: Clock;
  logger: Logger;
  /** Keys the request hash (DATA_ENCRYPTION_KEY, like POST /payments). */
  hasher: RequestHasher;
  /** SAYSWITCH_PARTIAL_REFUNDS: off, a refund is of the whole charge. */
  partialRefunds: boolean;
}

/** The slice of the application refunds are built from (the composition root's `App` fits). */
export interface RefundApp {
  store: IntentStore;
  refunds: RefundStore;
  dispatcher: Dispatcher;
  clock: Clock;
  logger: Logger;
  hasher: RequestHasher;
  config: { sayswitch: { partialRefunds: boolean } };
}

/** The one place a refund's dependencies are built: for the API and the CLI. */
export function refundDeps(app: RefundApp): RefundDeps {
  return {
    store: app.store,
    refunds: app.refunds,
    dispatcher: app.dispatcher,
    clock: app.clock,
    logger: app.logger.child({ component: 'refunds' }),
    hasher: app.hasher,
    partialRefunds: app.config.sayswitch.partialRefunds,
  };
}

/** A refund request, already validated at the edge. */
export interface RefundInput {
  /** Minor units; absent: everything still refundable. */
  amount?: AmountMinor;
  reason?: string;
  /** The caller's idempotency key. */
  key?: string;
  /**
   * Who asks: the token's name (`API_TOKEN`) or `cli:<os user>` (batches/approval.ts
   * `cliIdentity`), as a resolution's `by`. Recorded on the refund, not part of the request hash:
   * the same key and body from another identity answers the refund the first one asked for.
   */
  requestedBy: string;
}

/** The store's reservation result, or a partial refund refused before reserving anything. */
export type RefundResult =
  RefundReservationResult | { status: 'partial_not_supported'; chargedMinor: number };

/** The hash a refund request stores, and how a stored one is recognized as the same request. */
function requestHashes(hasher: RequestHasher, canonical: string) {
  return {
    requestHash: hasher.digest(canonical),
    sameRequest: (stored: string | undefined) =>
      stored !== undefined && hasher.matches(stored, canonical),
  };
}

/** What a refund's request hash covers (the charge, the amount asked, the reason). */
function canonicalRequest(chargeKey: string, input: RefundInput): string {
  return JSON.stringify({
    chargeKey,
    amount: input.amount ?? null,
    reason: input.reason ?? null,
  });
}

/**
 * Reserves and creates a refund of the charge `reference` (its key, a reference, or the caller's
 * own key), and makes sure its job is enqueued. Nothing is written unless it is `created`.
 */
export async function createRefund(
  deps: RefundDeps,
  reference: string,
  input: RefundInput,
): Promise<RefundResult> {
  const charge = await findIntent(deps.store, reference);
  if (!charge) return { status: 'not_found' };
  let amount = input.amount;
  if (!deps.partialRefunds) {
    // Sayswitch documents only full refunds: the whole charge, or nothing (docs/refunds.md). A
    // payment that cannot be refunded at all is told so first (the reservation refuses it).
    if (amount !== undefined && amount !== charge.amount && isRefundable(charge))
      return { status: 'partial_not_supported', chargedMinor: charge.amount };
    amount = charge.amount;
  }
  const res = await deps.refunds.reserve({
    chargeKey: charge.key,
    ...(amount !== undefined ? { amount } : {}),
    ...(input.reason !== undefined ? { reason: input.reason } : {}),
    ...(input.key !== undefined ? { callerKey: input.key } : {}),
    ...requestHashes(deps.hasher, canonicalRequest(charge.key, input)),
    requestedBy: input.requestedBy,
    now: deps.clock.now(),
  });
  if (res.status === 'created' || res.status === 'existing') {
    const intent = res.intent;
    if (res.status === 'created')
      deps.logger.info(
        {
          key: intent.key,
          reference: intent.reference,
          chargeKey: charge.key,
          amount: intent.amount,
          currency: intent.currency,
          by: input.requestedBy,
        },
        'refund reserved',
      );
    // Enqueue (again): the job id is deterministic, so this is a no-op unless a crash lost it.
    if (intent.state === 'queued') await deps.dispatcher.submit(intent);
  }
  return res;
}
