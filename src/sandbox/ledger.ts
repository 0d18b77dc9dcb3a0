/**
 * The sandbox's truth of what money moved, in memory. Totals and wallet balances are kept up to
 * date on every transition so that neither a submission nor a ledger read ever scans all
 * references. Card data and account details are never stored here.
 */
import type { SubmissionKind } from './outcomes.ts';

export type LedgerStatus = 'pending' | 'success' | 'failed' | 'reversed';

/** One reference, as served by `GET /__sandbox/ledger`. `amount` is the requested amount in minor units. */
export interface LedgerEntry {
  kind: SubmissionKind;
  amount: number;
  currency: string;
  status: LedgerStatus;
  moneyMoved: boolean;
}

/** Per currency: the sum and number of references whose money moved (charges and payouts alike). */
export interface LedgerTotals {
  movedMinor: number;
  count: number;
}

/** How a 3-D Secure challenge stands (card flow `3ds2` only). */
export type Authentication = 'awaiting' | 'completed' | 'failed' | 'abandoned' | 'expired';

/**
 * Everything that happened to one reference, for telling exactly-once from the outside. A
 * reference that was submitted but never recorded (56, 57) has activity and no `references` entry.
 */
export interface LedgerActivity {
  /** Submissions of this reference that passed auth and validation, duplicates included. */
  submissions: number;
  /** Submissions answered by the duplicate-reference rule (409, 400, 200 failure or echo). */
  duplicates: number;
  /** Times money moved for this reference (the sandbox never moves it twice: 0 or 1). */
  moves: number;
  /** Times moved money came back (a payout reversal). */
  reversals: number;
  /** Every status the reference went through, in order (`[]` while unrecorded). */
  statuses: LedgerStatus[];
  /** Present for a 3-D Secure charge. */
  authentication?: Authentication;
  /** Refunds of this transaction accepted (any status), when there were any. */
  refunds?: number;
  /** Money given back on this transaction by refunds that succeeded, minor units. */
  refundedMinor?: number;
}

export type RefundStatus = 'pending' | 'success' | 'failed';

/** One refund, as served under `refunds` by `GET /__sandbox/ledger`. */
export interface RefundEntry {
  refundId: number;
  /** The transaction refunded. */
  transactionReference: string;
  /** The caller's `merchant_reference`, kept only when the sandbox honours it. */
  merchantReference?: string;
  amount: number;
  currency: string;
  status: RefundStatus;
  createdAtMs: number;
}

/** The shape of `GET /__sandbox/ledger` (docs/sayswitch-wire.md). */
export interface Ledger {
  references: Record<string, LedgerEntry>;
  totals: Record<string, LedgerTotals>;
  activity: Record<string, LedgerActivity>;
  /** Refunds by the sandbox's `RF_…` reference. */
  refunds: Record<string, RefundEntry>;
}

/** A stored reference: the public entry plus what the API responses need. */
export interface StoredEntry extends LedgerEntry {
  feeMinor: number;
  /** Sayswitch's `gateway_response` text ("Approved", "Declined", …). */
  gatewayResponse: string;
  createdAtMs: number;
  updatedAtMs: number;
}

/** Every wallet starts with 10,000,000.00 so payouts never run dry in a demo or benchmark. */
const INITIAL_BALANCE_MINOR = 1_000_000_000;

export class LedgerStore {
  private readonly entries = new Map<string, StoredEntry>();
  private readonly totals = new Map<string, LedgerTotals>();
  private readonly balances = new Map<string, number>();
  private readonly activity = new Map<string, LedgerActivity>();
  private readonly refunds = new Map<string, RefundEntry>();

  has(reference: string): boolean {
    return this.entries.has(reference);
  }

  get(reference: string): StoredEntry | undefined {
    return this.entries.get(reference);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Counts a submission of `reference` (before it is known whether anything is recorded). */
  noteSubmission(reference: string): void {
    this.activityOf(reference).submissions++;
  }

  /** Counts a submission answered by the duplicate-reference rule. */
  noteDuplicate(reference: string): void {
    this.activityOf(reference).duplicates++;
  }

  noteAuthentication(reference: string, state: Authentication): void {
    this.activityOf(reference).authentication = state;
  }

  /** Records a new reference. The caller has checked that it is not there yet (duplicate). */
  record(reference: string, entry: Omit<StoredEntry, 'updatedAtMs'>): StoredEntry {
    const stored: StoredEntry = { ...entry, updatedAtMs: entry.createdAtMs };
    this.entries.set(reference, stored);
    const activity = this.activityOf(reference);
    activity.statuses.push(stored.status);
    if (stored.moneyMoved) {
      this.applyMoved(stored, +1);
      activity.moves++;
    }
    return stored;
  }

  /** Moves a reference to a new status, adjusting totals when `moneyMoved` flips. */
  transition(
    reference: string,
    to: { status: LedgerStatus; moneyMoved: boolean; gatewayResponse: string; nowMs: number },
  ): StoredEntry | undefined {
    const stored = this.entries.get(reference);
    if (!stored) return undefined;
    const activity = this.activityOf(reference);
    if (stored.moneyMoved !== to.moneyMoved) {
      this.applyMoved(stored, to.moneyMoved ? +1 : -1);
      if (to.moneyMoved) activity.moves++;
      else activity.reversals++;
    }
    if (stored.status !== to.status) activity.statuses.push(to.status);
    stored.status = to.status;
    stored.moneyMoved = to.moneyMoved;
    stored.gatewayResponse = to.gatewayResponse;
    stored.updatedAtMs = to.nowMs;
    return stored;
  }

  /**
   * Records a refund of a transaction (pending). The caller has checked that it fits what the
   * transaction still has to give back ({@link LedgerStore.refundableMinor}).
   */
  recordRefund(rf: string, entry: RefundEntry): void {
    this.refunds.set(rf, { ...entry });
    const a = this.activityOf(entry.transactionReference);
    a.refunds = (a.refunds ?? 0) + 1;
  }

  /** Ends a pending refund: a success gives the money back (wallet and the transaction's activity). */
  settleRefund(rf: string, status: 'success' | 'failed'): RefundEntry | undefined {
    const r = this.refunds.get(rf);
    if (!r || r.status !== 'pending') return r;
    r.status = status;
    if (status === 'success') {
      const a = this.activityOf(r.transactionReference);
      a.refundedMinor = (a.refundedMinor ?? 0) + r.amount;
      this.balances.set(r.currency, this.balanceMinor(r.currency) - r.amount);
    }
    return r;
  }

  refund(rf: string): RefundEntry | undefined {
    return this.refunds.get(rf);
  }

  /** Every refund of a transaction, by `RF_…` reference, oldest first. */
  refundsOf(transactionReference: string): [string, RefundEntry][] {
    return [...this.refunds].filter(([, r]) => r.transactionReference === transactionReference);
  }

  /** The refund with this `merchant_reference`, if one was kept. */
  refundByMerchantReference(ref: string): [string, RefundEntry] | undefined {
    return [...this.refunds].find(([, r]) => r.merchantReference === ref);
  }

  /** What a transaction can still give back: its amount less every refund not failed. */
  refundableMinor(transactionReference: string): number {
    const t = this.entries.get(transactionReference);
    if (!t) return 0;
    let reserved = 0;
    for (const [, r] of this.refundsOf(transactionReference))
      if (r.status !== 'failed') reserved += r.amount;
    return t.amount - reserved;
  }

  get refundCount(): number {
    return this.refunds.size;
  }

  /** Wallet balance in minor units: charges add the requested amount, payouts take amount + fee. */
  balanceMinor(currency: string): number {
    return this.balances.get(currency) ?? INITIAL_BALANCE_MINOR;
  }

  /** A deep copy: callers may keep or mutate it without touching the live ledger. */
  snapshot(): Ledger {
    const references: Record<string, LedgerEntry> = {};
    for (const [ref, e] of this.entries) {
      references[ref] = {
        kind: e.kind,
        amount: e.amount,
        currency: e.currency,
        status: e.status,
        moneyMoved: e.moneyMoved,
      };
    }
    const totals: Record<string, LedgerTotals> = {};
    for (const [currency, t] of this.totals) totals[currency] = { ...t };
    const activity: Record<string, LedgerActivity> = {};
    for (const [ref, a] of this.activity) activity[ref] = { ...a, statuses: [...a.statuses] };
    const refunds: Record<string, RefundEntry> = {};
    for (const [rf, r] of this.refunds) refunds[rf] = { ...r };
    return { references, totals, activity, refunds };
  }

  private activityOf(reference: string): LedgerActivity {
    let a = this.activity.get(reference);
    if (!a) {
      a = { submissions: 0, duplicates: 0, moves: 0, reversals: 0, statuses: [] };
      this.activity.set(reference, a);
    }
    return a;
  }

  private applyMoved(entry: StoredEntry, sign: 1 | -1): void {
    let t = this.totals.get(entry.currency);
    if (!t) {
      t = { movedMinor: 0, count: 0 };
      this.totals.set(entry.currency, t);
    }
    t.movedMinor += sign * entry.amount;
    t.count += sign;
    const walletDelta = entry.kind === 'charge' ? entry.amount : -(entry.amount + entry.feeMinor);
    this.balances.set(entry.currency, this.balanceMinor(entry.currency) + sign * walletDelta);
  }
}
