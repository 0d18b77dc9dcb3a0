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

/** The shape of `GET /__sandbox/ledger` (docs/sayswitch-wire.md). */
export interface Ledger {
  references: Record<string, LedgerEntry>;
  totals: Record<string, LedgerTotals>;
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

  has(reference: string): boolean {
    return this.entries.has(reference);
  }

  get(reference: string): StoredEntry | undefined {
    return this.entries.get(reference);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Records a new reference. The caller has checked that it is not there yet (409). */
  record(reference: string, entry: Omit<StoredEntry, 'updatedAtMs'>): StoredEntry {
    const stored: StoredEntry = { ...entry, updatedAtMs: entry.createdAtMs };
    this.entries.set(reference, stored);
    if (stored.moneyMoved) this.applyMoved(stored, +1);
    return stored;
  }

  /** Moves a reference to a new status, adjusting totals when `moneyMoved` flips. */
  transition(
    reference: string,
    to: { status: LedgerStatus; moneyMoved: boolean; gatewayResponse: string; nowMs: number },
  ): StoredEntry | undefined {
    const stored = this.entries.get(reference);
    if (!stored) return undefined;
    if (stored.moneyMoved !== to.moneyMoved) this.applyMoved(stored, to.moneyMoved ? +1 : -1);
    stored.status = to.status;
    stored.moneyMoved = to.moneyMoved;
    stored.gatewayResponse = to.gatewayResponse;
    stored.updatedAtMs = to.nowMs;
    return stored;
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
    return { references, totals };
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
