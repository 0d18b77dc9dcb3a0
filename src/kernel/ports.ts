/**
 * Ports: what the features need from the outside world, typed in domain terms. Adapters
 * (gateway/sayswitch, store/) implement them and are injected from the composition root.
 */
import type { AmountMinor, ChargeCurrency, Currency, PayoutCurrency } from './money.ts';
import type { AttemptReference } from './ids.ts';
import type { FailureReason, IntentState } from './intent.ts';
import type { Intent, IntentDraft, IntentHistoryEntry, PaymentMode } from './payment.ts';

export type { PaymentMode };

export interface ChargeRequest {
  reference: AttemptReference;
  amount: AmountMinor;
  currency: ChargeCurrency;
  email: string;
  /** The encrypted card string from Sayswitch's card-encryption step. Never logged. */
  cardToken: string;
  narration?: string;
}

export interface PayoutRequest {
  reference: AttemptReference;
  amount: AmountMinor;
  currency: PayoutCurrency;
  accountNumber: string;
  bankCode: string;
  bankName: string;
  accountName: string;
  narration: string;
  paymentMode: PaymentMode;
}

interface OutcomeBase {
  reference: string;
  /** Sayswitch's own id or reference for the transaction, when it gives one. */
  gatewayReference?: string;
}

/** What the gateway says happened to a submission. A decline is a result, not an error. */
export type GatewayOutcome =
  | (OutcomeBase & {
      status: 'succeeded';
      /** The amount requested (Sayswitch's `requested_amount`), kept apart from the fee. */
      amount?: AmountMinor;
      fee?: AmountMinor;
    })
  | (OutcomeBase & { status: 'failed'; reason: FailureReason; message?: string })
  | (OutcomeBase & { status: 'pending'; message?: string })
  | (OutcomeBase & { status: 'reversed'; amount?: AmountMinor; fee?: AmountMinor });

/** A lookup by reference may also find nothing. */
export type LookupOutcome = GatewayOutcome | { status: 'not_found'; reference: string };

export interface Bank {
  name: string;
  code: string;
}

export interface WalletBalance {
  currency: Currency;
  balance: AmountMinor;
  pending: AmountMinor;
}

/**
 * Sayswitch, as the product needs it. Submissions throw a `BillingError` of one of four kinds
 * (kernel/errors.ts) when the outcome is not a result; a 409 on a duplicate reference is resolved
 * inside the adapter by looking the reference up and returning what it found.
 */
export interface PaymentGateway {
  chargeCard(req: ChargeRequest): Promise<GatewayOutcome>;
  payout(req: PayoutRequest): Promise<GatewayOutcome>;
  verifyCharge(reference: string): Promise<LookupOutcome>;
  lookupPayout(reference: string): Promise<LookupOutcome>;
  listBanks(currency: PayoutCurrency): Promise<Bank[]>;
  resolveAccountName(q: {
    bankCode: string;
    accountNumber: string;
    currency: PayoutCurrency;
  }): Promise<string>;
  walletBalance(currency: Currency): Promise<WalletBalance>;
}

/** Options of one atomic intent transition. */
export interface TransitionOptions {
  /** Refuse (as `stale`) unless the intent is still on this attempt. */
  expectAttempt?: number;
  /** Fields to set with the transition. */
  patch?: Partial<
    Pick<
      Intent,
      'reason' | 'message' | 'gatewayReference' | 'fee' | 'leaseUntil' | 'sentAt' | 'checks'
    >
  >;
  /** Start a new attempt (n+1): only `failed → queued` for a dunning retry. */
  newAttempt?: boolean;
  /** Count a proven-unsent resubmission of the same attempt (`unknown → queued`). */
  unsentResubmit?: boolean;
  /** Reason written to the history line. */
  reason?: string;
  /** When to check this intent next (pending/unknown); removes it from the due set otherwise. */
  reconcileAt?: number;
  /** Also watch a succeeded intent until then (payout reversals). */
  watchUntil?: number;
}

export type TransitionResult =
  | { ok: true; from: IntentState; intent: Intent }
  | { ok: false; why: 'missing' }
  | { ok: false; why: 'refused' | 'stale'; state: IntentState; attempt: number };

/** Persistence of intents: atomic, refusing any transition not in kernel/intent.ts. */
export interface IntentStore {
  /** Creates the intent in `queued` unless the key exists; returns what is stored either way. */
  create(draft: IntentDraft, now: number): Promise<{ created: boolean; intent: Intent }>;
  get(key: string): Promise<Intent | undefined>;
  history(key: string): Promise<IntentHistoryEntry[]>;
  transition(
    key: string,
    to: IntentState,
    now: number,
    opts?: TransitionOptions,
  ): Promise<TransitionResult>;
  /** Intents whose next reconcile check is due at `now`, oldest first. Cost follows the due ones. */
  dueForReconcile(now: number, limit: number): Promise<string[]>;
  /** Intents in `submitting` whose lease expired before `now`. */
  expiredLeases(now: number, limit: number): Promise<string[]>;
  /** Intents in `queued` since before `before` (candidates for a lost enqueue). */
  queuedSince(before: number, limit: number): Promise<string[]>;
  countByState(): Promise<Record<IntentState, number>>;
}
