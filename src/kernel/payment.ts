/**
 * The payment intent record: one amount of money to move once, persisted before any gateway
 * call. Card tokens are held only sealed (encrypted at rest); the worker unseals them at the
 * moment of the call.
 */
import type { AmountMinor, Currency } from './money.ts';
import type { AttemptReference, IntentKey } from './ids.ts';
import type { IntentOrigin, IntentState, IntentType } from './intent.ts';

export type PaymentMode = 'bank' | 'momo';

export interface ChargePayee {
  kind: 'charge';
  email: string;
  /** AES-256-GCM sealed card token (infra/sealing.ts). Never logged, never in a job. */
  cardTokenSealed: string;
  narration?: string;
}

export interface PayoutPayee {
  kind: 'payout';
  accountNumber: string;
  bankCode: string;
  bankName: string;
  accountName: string;
  narration: string;
  paymentMode: PaymentMode;
}

/**
 * What a refund intent gives back and where (docs/refunds.md): the charge it refunds, by our key
 * and by the reference Sayswitch knows the transaction under.
 */
export interface RefundPayee {
  kind: 'refund';
  /** The refunded charge's intent key. */
  chargeKey: string;
  /** The charge's succeeded attempt reference: the `reference` of Sayswitch's refund request. */
  chargeReference: string;
  /** What the charge moved, minor units: a refund of less is partial. */
  chargedMinor: number;
  /** The caller's reason, at most 200 characters. */
  reason?: string;
  /**
   * Who asked for the refund: the token's name (`API_TOKEN`) or `cli:<os user>`, as a resolution's
   * `by` and a batch's `submittedBy`. Absent on refunds stored before it was recorded.
   */
  requestedBy?: string;
}

export type Payee = ChargePayee | PayoutPayee | RefundPayee;

export interface Intent {
  key: IntentKey;
  type: IntentType;
  origin: IntentOrigin;
  state: IntentState;
  amount: AmountMinor;
  currency: Currency;
  /** Current attempt number n; the reference is `<key>_<n>`. */
  attempt: number;
  reference: AttemptReference;
  payee: Payee;
  createdAt: number;
  updatedAt: number;
  reason?: string;
  message?: string;
  gatewayReference?: string;
  fee?: AmountMinor;
  batchId?: string;
  subscriptionId?: string;
  line?: number;
  meta?: Record<string, string>;
  /** Hash of the creating request, to refuse the same key with a different body. */
  requestHash?: string;
  /** While `submitting`: until when the worker's claim holds. */
  leaseUntil?: number;
  /** When the current attempt was last handed to the gateway. */
  sentAt?: number;
  /** Reconcile checks made in the current unresolved episode. */
  checks: number;
  /** How many times the intent entered `queued` (makes submit job ids deterministic). */
  enqueues: number;
  /**
   * Random, fixed at creation, part of every job id of the intent (infra/queues/names.ts): a job
   * left from before a Redis data loss, or replayed from a client's offline queue, never collides
   * with the jobs of an intent created again under the same key. Absent on intents stored before
   * it existed (their job ids are unchanged).
   */
  incarnation?: string;
  /** How many times verify proved the attempt unsent and it was resubmitted. */
  unsentResubmits: number;
  /**
   * When the gateway first showed that the current attempt's reference exists (a duplicate answer,
   * a pending or challenge answer, a lookup that found it). From then on a lookup's "not found"
   * proves nothing (payments/resubmission.ts).
   */
  seenAtGateway?: number;
  /**
   * Set (to the creation time) when the intent was created while a Redis data loss was
   * unacknowledged (infra/redis/epoch.ts): the lost store may have sent its references already,
   * so from the first submission on they may exist at the gateway and a refusal or a `failed`
   * answer is verified, not adopted (payments/resubmission.ts). Kept across attempts: attempt n+1
   * may have been sent before the loss too.
   */
  afterDataLoss?: number;
  /**
   * Set when the intent's claim lapsed (its lease ran out before its worker answered: the worker
   * may be gone, or paused and yet to send). Kept: a refund that has it is never resent on a
   * `not_found` (payments/resubmission.ts `afterNotFound`), since that worker may still send it.
   */
  claimLapsedAt?: number;
  /** While `requires_action`: where the customer completes the challenge. Not a secret. */
  authorizationUrl?: string;
  /** While `requires_action`: the end of REQUIRES_ACTION_WINDOW, when the intent is verified. */
  requiresActionUntil?: number;
  /**
   * A reusable card authorization the gateway returned with a success, sealed like the card token
   * (infra/sealing.ts). Never logged, never in a view or an event (events say `hasAuthorization`).
   */
  authorizationSealed?: string;
}

export interface IntentHistoryEntry {
  at: number;
  from: IntentState | null;
  to: IntentState;
  attempt: number;
  reason?: string;
  /** Set when a person decided this transition (payments/resolve.ts). */
  resolution?: Resolution;
  /**
   * On a refund's first line (`null → queued`): who asked for it (RefundPayee.requestedBy).
   * Absent on refunds stored before it was recorded.
   */
  requestedBy?: string;
}

/** An operator's resolution of a payment, recorded in its history and its event. */
export interface Resolution {
  /** Who: the token's name (`API_TOKEN`) or `cli:<user>`. */
  by: string;
  note: string;
  /** What the gateway said when asked just before (`succeeded`, `not_found`, `unreachable`, …). */
  gateway: string;
  /** True when the operator overrode a gateway answer that disagreed or was not final. */
  forced: boolean;
}

/** What is needed to create an intent; the store fills in state, timestamps and counters. */
export type IntentDraft = Pick<
  Intent,
  | 'key'
  | 'type'
  | 'origin'
  | 'amount'
  | 'currency'
  | 'payee'
  | 'batchId'
  | 'subscriptionId'
  | 'line'
  | 'meta'
  | 'requestHash'
>;
