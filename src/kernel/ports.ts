/**
 * Ports: what the features need from the outside world, typed in domain terms. Adapters
 * (gateway/sayswitch, store/) implement them and are injected from the composition root.
 */
import type { AmountMinor, ChargeCurrency, Currency, PayoutCurrency } from './money.ts';
import type { AttemptReference, IntentKey } from './ids.ts';
import type { FailureReason, IntentState, IntentType } from './intent.ts';
import type {
  Intent,
  IntentDraft,
  IntentHistoryEntry,
  Payee,
  PayoutPayee,
  Resolution,
} from './payment.ts';
import { CryptoError, UnreadableRecordError } from './errors.ts';
import type { BillingEvent } from './events.ts';
import type { Log } from './log.ts';

export interface ChargeRequest {
  reference: AttemptReference;
  amount: AmountMinor;
  currency: ChargeCurrency;
  email: string;
  /** The encrypted card string from Sayswitch's card-encryption step. Never logged. */
  cardToken: string;
  narration?: string;
}

/** A payout as sent: the intent's payee (kernel/payment.ts) with the attempt's reference. */
export interface PayoutRequest extends Omit<PayoutPayee, 'kind'> {
  reference: AttemptReference;
  amount: AmountMinor;
  currency: PayoutCurrency;
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
      /**
       * A reusable card authorization (token or code) Sayswitch returned on verify, for later
       * charges without the customer. A secret: sealed at rest, never logged.
       */
      authorization?: string;
    })
  | (OutcomeBase & { status: 'failed'; reason: FailureReason; message?: string })
  | (OutcomeBase & { status: 'pending'; message?: string })
  | (OutcomeBase & {
      /**
       * The customer must act (3-D Secure challenge): nothing has moved yet; the payment waits
       * for the challenge to be completed, failed or abandoned (docs/sayswitch-wire.md).
       */
      status: 'requires_action';
      /** Where the customer completes the challenge (Sayswitch's `_links`), when given. */
      authorizationUrl?: string;
      message?: string;
    })
  | (OutcomeBase & { status: 'reversed'; amount?: AmountMinor; fee?: AmountMinor });

/** A lookup by reference may also find nothing. */
export type LookupOutcome = GatewayOutcome | { status: 'not_found'; reference: string };

/**
 * A refund as sent (docs/refunds.md): Sayswitch's documented body is only the transaction's
 * reference; `amount` is sent only for a partial refund, `reference` (ours) as
 * `merchant_reference`, which Sayswitch may ignore.
 */
export interface RefundRequest {
  /** Our refund's attempt reference (`rf<n>_<chargeKey>_1`). */
  reference: AttemptReference;
  /** The charge's reference at Sayswitch. */
  transactionReference: string;
  /** Minor units; absent for a full refund. */
  amount?: AmountMinor;
  currency: Currency;
  reason?: string;
}

/** One refund as Sayswitch shows it (a submission's answer, a status lookup, a list item). */
export interface GatewayRefund {
  /** Sayswitch's refund reference (`RF_…`), when it gives one. */
  gatewayReference?: string;
  /** The transaction the refund is of, when the answer says. */
  transactionReference?: string;
  /** Our `merchant_reference`, when Sayswitch echoes it. */
  merchantReference?: string;
  amount?: AmountMinor;
  status: 'pending' | 'succeeded' | 'failed';
  message?: string;
}

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
  /**
   * Asks Sayswitch to refund a transaction. A refusal of the refund (declined) is a `failed`
   * result; an ambiguous answer throws `outcome_unknown` like a charge (kernel/errors.ts).
   */
  refund(req: RefundRequest): Promise<GatewayRefund>;
  /** A refund by Sayswitch's refund reference; `undefined` when Sayswitch does not know it. */
  refundStatus(gatewayReference: string): Promise<GatewayRefund | undefined>;
  /** Every refund Sayswitch shows for a transaction reference (docs/refunds.md "Matching"). */
  refundsOf(transactionReference: string): Promise<GatewayRefund[]>;
}

/**
 * The outbound rate limit of the gateway (SAYSWITCH_RATE_LIMIT_PER_SEC, shared by every process on
 * one Redis): one token per gateway call. Lookups take theirs inside the gateway; a submission
 * takes its token before it claims the intent (payments/submit.ts), so the claim's lease starts
 * only once the call may go out, and the gateway's `chargeCard` and `payout` do not wait again.
 */
export interface RateLimiter {
  /** Resolves once a token is granted, waiting in line (first come, first served) until then. */
  acquire(): Promise<void>;
}

/**
 * Failed password sign-ins (the dashboard's and the console's basic auth), counted per client
 * address and shared by every api process on one Redis (docs/console.md "Failed sign-ins"): after
 * DASHBOARD_SIGN_IN_MAX_FAILURES within DASHBOARD_SIGN_IN_BLOCK the address is refused for DASHBOARD_SIGN_IN_BLOCK, correct
 * password or not, so guessing online stops there.
 */
export interface SignInThrottle {
  /** How long (ms) `client` must still wait before a password of it is checked; 0 if it need not. */
  blockedFor(client: string): Promise<number>;
  /**
   * Takes one password attempt of `client`, before its password is checked: the wait (ms) when it
   * is over the limit (the password must then not be checked), else 0. The attempt counts as a
   * failure until {@link SignInThrottle.succeeded}: guesses sent at once are each counted before
   * any is checked, so a burst cannot get more than the limit checked.
   */
  attempt(client: string): Promise<number>;
  /** The attempt's password was right: it does not count. */
  succeeded(client: string): Promise<void>;
  /** The attempt's password was wrong: the wait (ms) it starts when it reached the limit, else 0. */
  failed(client: string): Promise<number>;
}

/**
 * A gateway answer that contradicts what we know, which the outcome stands on anyway and a person
 * must look at (docs/operations.md, alerts): a success for another amount than ours, and `failed`
 * for a payout the gateway said succeeded.
 */
export const GATEWAY_DISCREPANCIES = ['amount_mismatch', 'payout_failed_after_success'] as const;
export type GatewayDiscrepancy = (typeof GATEWAY_DISCREPANCIES)[number];

/** Counts {@link GatewayDiscrepancy}s for alerting (the metrics, built in the composition root). */
export interface DiscrepancyCounter {
  countDiscrepancy(kind: GatewayDiscrepancy): void;
}

/** Options of one atomic intent transition. */
export interface TransitionOptions {
  /** Refuse (as `stale`) unless the intent is still on this attempt. */
  expectAttempt?: number;
  /**
   * Refuse (as `refused`) unless the intent is in one of these states. It is for a caller that
   * decided on the state it read, not on the gateway's word. A batch cancel decides on `queued`,
   * and a claim in between does not change the attempt. A person decides on the state the page
   * showed. It narrows the state machine's from-states and never widens them.
   */
  onlyFrom?: readonly IntentState[];
  /**
   * The lease of the claim the caller holds (its copy's `leaseUntil`). The transition is refused
   * (as `stale`) unless the intent is still `submitting` under that claim, whatever state it is in
   * now. A worker whose lease ran out while the intent was verified, re-queued, claimed again on
   * the same attempt and perhaps answered must not record its answer over the new claim's. It is a
   * fence; see payments/apply-outcome.ts `heldClaim`.
   */
  claimLease?: number;
  /**
   * Only if the current reference can never have reached the gateway (refused otherwise): no
   * unsent resubmission, never seen by the gateway, not created after a data loss (payments/
   * resubmission.ts `mayExistAtGateway`), checked in the same step as the write. A batch cancel's
   * `queued → failed`: a row re-queued after a verify proved its reference unsent may still see
   * an earlier request land, so it is never failed by inference.
   */
  neverSent?: boolean;
  /** Fields to set with the transition. */
  patch?: Partial<
    Pick<
      Intent,
      | 'reason'
      | 'message'
      | 'gatewayReference'
      | 'fee'
      | 'leaseUntil'
      | 'sentAt'
      | 'checks'
      | 'seenAtGateway'
      | 'claimLapsedAt'
      | 'authorizationUrl'
      | 'requiresActionUntil'
      | 'authorizationSealed'
    >
  >;
  /** Start a new attempt (n+1): only `failed → queued` for a dunning retry. */
  newAttempt?: boolean;
  /**
   * The new attempt's payee (a subscription's changed card). Only with `newAttempt`: an attempt
   * that may have reached the gateway keeps what it was sent with.
   */
  payee?: Payee;
  /** Count a proven-unsent resubmission of the same attempt (`unknown → queued`). */
  unsentResubmit?: boolean;
  /** Reason written to the history line. */
  reason?: string;
  /** When to check this intent next (pending/unknown); removes it from the due set otherwise. */
  reconcileAt?: number;
  /** A person's decision: written to the history line and the event (`resolution`). */
  resolution?: Resolution;
  /**
   * Take a token of the outbound gateway rate limit in the same atomic step (the submit claim).
   * Over the limit nothing changes and the result is `rate_limited` with the wait until a token
   * may be free; a transition refused for any other reason takes no token.
   */
  rateLimited?: boolean;
  /**
   * The caller's copy of the intent, on `expectAttempt`: the result's `intent` is this copy with
   * the transition's changes applied, instead of the hash read back (one read less per step). Fields
   * changed meanwhile outside transitions (`checks`, `seenAtGateway`) read as in the copy.
   */
  known?: Intent;
}

/** A page of a payment list: the intents, and those of its keys this version cannot read. */
export interface IntentPage {
  intents: Intent[];
  unreadable?: UnreadableRecordError[];
  next?: string;
}

/** Filters of a payment list (GET /payments). Dates are createdAt bounds in ms, inclusive. */
export interface IntentFilter {
  state?: IntentState;
  type?: IntentType;
  batchId?: string;
  subscriptionId?: string;
  currency?: Currency;
  /** A charge's customer email, lower-case (compared ignoring case). */
  email?: string;
  createdAfter?: number;
  createdBefore?: number;
}

export type TransitionResult =
  | { ok: true; from: IntentState; intent: Intent }
  | { ok: false; why: 'missing' }
  | { ok: false; why: 'refused' | 'stale'; state: IntentState; attempt: number }
  | { ok: false; why: 'rate_limited'; state: IntentState; attempt: number; retryInMs: number };

/** What a batch ingest needs to know of an intent it created or found. */
export interface BatchIntent {
  key: IntentKey;
  type: IntentType;
  created: boolean;
  state: IntentState;
  attempt: number;
  enqueues: number;
  /** See Intent.incarnation. */
  incarnation?: string;
  reference: AttemptReference;
  amount: AmountMinor;
  currency: Currency;
}

/** One row of a batch, ready to become an intent: payee and meta already JSON. */
export interface BatchIntentRow {
  key: IntentKey;
  line: number;
  amount: AmountMinor;
  currency: Currency;
  /** `JSON.stringify(payee)`, card token sealed. */
  payee: string;
  /** `JSON.stringify(meta)`, or '' when the row has none. */
  meta: string;
}

/** Persistence of intents: atomic, refusing any transition not in payments/state-machine.ts. */
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
  /**
   * One page of intents matching `filter` (payments/list.ts); `next` is an opaque cursor, absent on
   * the last page. Throws a RangeError for a cursor it did not issue or issued for other filters.
   * An intent on the page that this version cannot read is left out of `intents` and is in
   * `unreadable` (absent when there is none), so one such record never fails every page it is on.
   */
  list(filter: IntentFilter, limit: number, cursor?: string): Promise<IntentPage>;
  /**
   * Records that check number `checks` of the intent's current attempt ran, and when the next one
   * is due (undefined: none). False when another check already recorded it.
   */
  recordCheck(intent: Intent, checks: number, nextAt: number | undefined): Promise<boolean>;
  /**
   * Records that the gateway showed the reference of `attempt` exists (`seenAtGateway = at`),
   * unless already recorded or the intent moved on to another attempt. True when it was recorded.
   */
  markSeenAtGateway(key: string, attempt: number, at: number): Promise<boolean>;
  /** Keys of a batch's intents in line order, `offset` from the first. */
  batchKeys(batchId: string, offset: number, limit: number): Promise<string[]>;
  /** Keys of intents in `state` whose last change is before `before`, oldest first. */
  keysUpdatedBefore(state: IntentState, before: number, limit: number): Promise<string[]>;
  /** Keys of intents in `state`, oldest first. */
  keysInState(state: IntentState, limit: number): Promise<string[]>;
  /** Creates a batch's intents (or finds them), in few round trips; one result per row, in order. */
  createBatchRows(chunk: {
    batchId: string;
    type: IntentType;
    rows: readonly BatchIntentRow[];
    now: number;
  }): Promise<BatchIntent[]>;
}

/** What a refund reservation (docs/refunds.md) is asked to write. */
export interface RefundReservation {
  chargeKey: string;
  /** Minor units; undefined refunds all that is still refundable. */
  amount?: AmountMinor;
  reason?: string;
  /** The caller's idempotency key: the same key returns the refund it created. */
  callerKey?: string;
  /** Hash of the request (stored), to refuse the same caller key with a different body. */
  requestHash: string;
  /**
   * Whether a stored refund's hash is this request's: `requestHash`, or during a rotation of
   * DATA_ENCRYPTION_KEY the same request's hash under the previous key (RequestHasher). Absent:
   * equal to `requestHash`.
   */
  sameRequest?(stored: string | undefined): boolean;
  /** Who asks: the token's name (`API_TOKEN`) or `cli:<os user>` (RefundPayee.requestedBy). */
  requestedBy: string;
  now: number;
}

/** What a reservation did; nothing is written unless `created`. */
export type RefundReservationResult =
  | { status: 'created'; intent: Intent }
  | { status: 'existing'; intent: Intent }
  | { status: 'conflict'; intent: Intent }
  | { status: 'not_found' }
  | { status: 'not_refundable'; type: IntentType; state: IntentState }
  | { status: 'exceeds'; chargedMinor: number; reservedMinor: number; requestedMinor: number }
  | { status: 'too_many' };

/**
 * Refunds of charges in the intent store's layout (payments/store/refund-store.ts): the
 * reservation of an amount against a charge, atomic in Redis, and the one-in-flight slot.
 */
export interface RefundStore {
  /**
   * Creates refund n+1 of a `succeeded` charge in `queued`, unless the charge minus every refund
   * not `failed` leaves less than the amount (all in one atomic step).
   */
  reserve(req: RefundReservation): Promise<RefundReservationResult>;
  /** The charge's refunds, in order. */
  refundsOf(chargeKey: string): Promise<Intent[]>;
  /**
   * Takes the charge's refund slot for `refundKey` unless another refund of the charge holds it
   * and is not final: at most one refund of a charge is at the gateway at a time.
   */
  takeSlot(
    chargeKey: string,
    refundKey: string,
  ): Promise<{ ok: true } | { ok: false; holder: string; state: string }>;
}

/** Sealing of card tokens at rest (infra/sealing.ts). */
/**
 * Card data at rest (infra/sealing.ts): sealed under DATA_ENCRYPTION_KEY; during a rotation what
 * DATA_ENCRYPTION_KEY_PREVIOUS sealed still opens, and {@link Sealer.reseal} moves it to the
 * current key.
 */
export interface Sealer {
  seal(plaintext: string): string;
  /** The plaintext; throws CryptoError `unseal_failed` when neither key opens it. */
  unseal(sealed: string): string;
  /**
   * `sealed` sealed again under the current key when the previous key sealed it; undefined when
   * the current key already did. Throws like {@link Sealer.unseal} when neither key opens it.
   */
  reseal(sealed: string): string | undefined;
}

/**
 * Moves one sealed value to the current key (Sealer.reseal): a new value, undefined when it is
 * already under the current key; throws CryptoError when no key opens it.
 */
export type Reseal = (sealed: string) => string | undefined;

/**
 * Records a pass over every record (`billing keys reseal`, `billing payments reindex`) skipped
 * because this version cannot read them ({@link UnreadableRecordError}: not JSON, a field missing
 * or of another shape): left as they are, named for the operator (docs/operations.md "A record
 * this version cannot read").
 */
export interface UnreadableRecords {
  /** How many. */
  unreadableRecords: number;
  /** Which (intent keys, subscription ids, `<batch>:<line>`), at most 20. */
  unreadableRecordsAt: string[];
}

export const NO_UNREADABLE_RECORDS: UnreadableRecords = {
  unreadableRecords: 0,
  unreadableRecordsAt: [],
};

/** Both counts together (the sharded stores add their shards'). */
export function addUnreadableRecords(
  a: UnreadableRecords,
  b: UnreadableRecords,
): UnreadableRecords {
  return {
    unreadableRecords: a.unreadableRecords + b.unreadableRecords,
    unreadableRecordsAt: [...a.unreadableRecordsAt, ...b.unreadableRecordsAt].slice(0, 20),
  };
}

/**
 * `read()`, or undefined when it throws UnreadableRecordError: then the record is counted into
 * `counts` and named, and the pass goes on with the others.
 */
export function readOrCount<T>(counts: UnreadableRecords, read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof UnreadableRecordError)) throw err;
    counts.unreadableRecords++;
    if (counts.unreadableRecordsAt.length < 20) counts.unreadableRecordsAt.push(err.id);
    return undefined;
  }
}

/** What one store's pass of `billing keys reseal` found (docs/operations.md "Rotating secrets"). */
export interface ResealCounts extends UnreadableRecords {
  /** Sealed values read. */
  checked: number;
  /** Sealed again under the current key (they were under the previous one). */
  resealed: number;
  /** Changed by someone else between the read and the write: left, for the next pass. */
  changed: number;
  /** Opened by neither key: left as they are. */
  unreadable: number;
  /** Where the unreadable ones are (intent keys, subscription ids, `<batch>:<line>`), at most 20. */
  unreadableAt: string[];
}

/** An empty count, and the sum of two (the sharded stores add their shards'). */
export const NO_RESEAL: ResealCounts = {
  checked: 0,
  resealed: 0,
  changed: 0,
  unreadable: 0,
  unreadableAt: [],
  ...NO_UNREADABLE_RECORDS,
};
export function addReseal(a: ResealCounts, b: ResealCounts): ResealCounts {
  return {
    checked: a.checked + b.checked,
    resealed: a.resealed + b.resealed,
    changed: a.changed + b.changed,
    unreadable: a.unreadable + b.unreadable,
    unreadableAt: [...a.unreadableAt, ...b.unreadableAt].slice(0, 20),
    ...addUnreadableRecords(a, b),
  };
}

/** A count a store's pass fills in (its own lists). */
export function newResealCounts(): ResealCounts {
  return { ...NO_RESEAL, unreadableAt: [], unreadableRecordsAt: [] };
}

/**
 * One sealed value through `reseal`, counted into `counts`: the new value, or undefined when it
 * stays (already current, or unreadable: then `at` is noted).
 */
export function resealOne(
  reseal: Reseal,
  sealed: string,
  at: string,
  counts: ResealCounts,
): string | undefined {
  counts.checked++;
  try {
    return reseal(sealed);
  } catch (err) {
    if (!(err instanceof CryptoError)) throw err;
    counts.unreadable++;
    if (counts.unreadableAt.length < 20) counts.unreadableAt.push(at);
    return undefined;
  }
}

/**
 * The digests that tell an idempotent retry from a conflicting request (HMAC-SHA256, hex, under
 * DATA_ENCRYPTION_KEY). During a rotation a digest made under DATA_ENCRYPTION_KEY_PREVIOUS still
 * matches, so a request retried across the change is still recognized.
 */
export interface RequestHasher {
  /** The digest of `canonical` under the current key. */
  digest(canonical: string): string;
  /** Whether `stored` is the digest of `canonical` under the current or the previous key. */
  matches(stored: string, canonical: string): boolean;
}

/** A stream entry: its id and flat `[field, value, …]`, or null when it was trimmed away. */
export type StreamEntry = [streamId: string, fields: string[] | null];

/** A running consumer of the events stream. */
export interface StreamConsumer {
  readonly consumer: string;
  /** False once {@link StreamConsumer.stop} finished. */
  isOpen(): boolean;
  /** Interrupts a blocking read, lets an in-progress handler finish, closes its connection. */
  stop(): Promise<void>;
}

/** How a consumer group follows the events stream (infra/redis/stream-consumer.ts). */
export interface EventConsumerOptions {
  group: string;
  /** Unique per process; a stable name lets a restart re-read its own pending entries. */
  consumer?: string;
  /** Already bound to the component it logs for. */
  logger: Log;
  /** What the logs call it: `<label> started`, `<label> stopped`. */
  label: string;
  /**
   * Handles a read's entries in stream order and acknowledges (with `ack`) those it is done with.
   * A throw leaves every unacknowledged entry pending: they are read again later.
   */
  handle: (entries: StreamEntry[], ack: (ids: readonly string[]) => Promise<void>) => Promise<void>;
  blockMs: number;
  batchSize: number;
  claimIdleMs: number;
  retryDelayMs: number;
  /**
   * Also follow the payment events of every intent shard (REDIS_SHARDS > 1; the ids of shard
   * n≥1's entries read `s<n>/<id>`). Default: the shard-less stream only, which has every event
   * of batches' and subscriptions' intents (they live in shard 0).
   */
  allShards?: boolean;
  /**
   * Called when the stream's trim removed entries before the group read them (after the one error
   * line that reports the gap; again on the consumer's next pass while it throws): a consumer
   * whose state is built from the events rebuilds what it can here (the batch tracker counts the
   * running batches' rows from their intents).
   */
  onTrimmed?: () => Promise<void>;
}

/**
 * The events stream `<prefix>:events`: payment events are appended by the intent transition
 * script itself; this port appends the rest and lets consumer groups follow it.
 */
export interface EventLog {
  /** Appends one event. Its `id` must be deterministic for the fact it reports. */
  append(event: BillingEvent): Promise<void>;
  /**
   * Appends the event unless one with the same id was appended through this method within
   * `ttlSeconds` (e.g. one alert per queue and minute). True when it was appended.
   */
  appendOnce(event: BillingEvent, ttlSeconds: number): Promise<boolean>;
  /** Reads events in order (for tests, the CLI and the notifier). */
  read(fromId?: string, count?: number): Promise<(BillingEvent & { streamId: string })[]>;
  /** The fields of one entry, or undefined when it was trimmed away. */
  entry(streamId: string): Promise<Record<string, string> | undefined>;
  /** Creates the consumer group (from the stream's start) if missing. */
  ensureGroup(group: string): Promise<void>;
  /** Starts a consumer of the group (created if missing) on a connection of its own. */
  consume(opts: EventConsumerOptions): Promise<StreamConsumer>;
}
