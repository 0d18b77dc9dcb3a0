/** Events of docs/product.md §8, appended to `<prefix>:events` and optionally POSTed. */
export const EVENT_TYPES = [
  'payment.succeeded',
  'payment.failed',
  'payment.pending',
  /** A 3-D Secure challenge waits for the customer; `data.authorizationUrl` is where. */
  'payment.requires_action',
  'payment.reversed',
  'payment.needs_review',
  /** A refund of a charge is final at the gateway (docs/refunds.md): money went back. */
  'refund.succeeded',
  /** The gateway itself failed the refund: nothing went back; its amount is refundable again. */
  'refund.failed',
  /** A refund's outcome is unresolved after every check: a person looks (docs/refunds.md). */
  'refund.needs_review',
  'subscription.renewed',
  'subscription.past_due',
  'subscription.canceled',
  'batch.completed',
  'alert.gateway_auth_failed',
  /** Redis lost its data: payments accepted before it are gone from the store (docs/operations.md). */
  'alert.redis_data_lost',
  /** A renewal's payment is unresolved: the subscription's billing is held (docs/subscriptions.md). */
  'subscription.billing_held',
  /** The held renewal's payment is final: the hold on it is lifted (docs/subscriptions.md). */
  'subscription.billing_resumed',
  /** Subscription lifecycle (docs/subscriptions.md "Lifecycle events"). */
  'subscription.created',
  'subscription.updated',
  'subscription.paused',
  'subscription.resumed',
  /** TRIAL_WILL_END_NOTICE before a trial ends. */
  'subscription.trial_will_end',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface BillingEvent {
  /** Unique and deterministic for the fact it reports, so consumers can de-duplicate. */
  id: string;
  type: EventType;
  at: number;
  data: Record<string, unknown>;
}

/** Which payment event a transition into `state` publishes, if any. */
export function paymentEventFor(state: string): EventType | undefined {
  switch (state) {
    case 'succeeded':
      return 'payment.succeeded';
    case 'failed':
      return 'payment.failed';
    case 'pending':
      return 'payment.pending';
    case 'requires_action':
      return 'payment.requires_action';
    case 'reversed':
      return 'payment.reversed';
    case 'needs_review':
      return 'payment.needs_review';
    default:
      return undefined;
  }
}

/**
 * Which event a transition of a refund intent (docs/refunds.md) into `state` publishes: refunds
 * never publish `payment.*` events, so a consumer of charges (a subscription's outcome consumer)
 * never mistakes a refund for a payment.
 */
export function refundEventFor(state: string): EventType | undefined {
  switch (state) {
    case 'succeeded':
      return 'refund.succeeded';
    case 'failed':
      return 'refund.failed';
    case 'needs_review':
      return 'refund.needs_review';
    default:
      return undefined;
  }
}
