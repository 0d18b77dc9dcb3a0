/**
 * How a recorded reference moves: status transitions in the ledger, settlement timers, and the
 * webhook each final status raises (in the payout-style `notify` shape, or for collections the
 * documented `type: payment.success` sample shape when `collectionWebhook` is `documented`).
 */
import type { CollectionWebhook, StatusVocabulary } from './options.ts';
import type { LedgerStatus, LedgerStore, StoredEntry } from './ledger.ts';
import type { TimerRegistry } from './timers.ts';
import { GATEWAY_RESPONSE, chargeData, iso, major, payoutData, statusWord } from './wire.ts';

export interface LifecycleDeps {
  ledger: LedgerStore;
  timers: TimerRegistry;
  settleMs: number;
  now: () => number;
  collectionWebhook: CollectionWebhook;
  /** The vocabulary of `data.status` in webhook bodies (`notifyType` and `type` keep theirs). */
  statusWords: StatusVocabulary;
  /** Called with each webhook payload when a reference reaches a final status; absent = no webhooks. */
  notify?: (reference: string, payload: unknown) => void;
}

const NOTIFY_TYPE: Record<LedgerStatus, string | undefined> = {
  success: 'successful',
  failed: 'failed',
  reversed: 'reversed',
  pending: undefined,
};

/** The documented sample's event names; charges are never reversed. */
const DOCUMENTED_TYPE: Record<LedgerStatus, string | undefined> = {
  success: 'payment.success',
  failed: 'payment.failed',
  reversed: undefined,
  pending: undefined,
};

export class Lifecycle {
  /** Payer emails, kept only for the documented webhook's `data.customer.email`. */
  private readonly emails = new Map<string, string>();
  private eventSeq = 0;

  constructor(private readonly deps: LifecycleDeps) {}

  /** Keeps what the documented collection webhook will need; a no-op for the notify shape. */
  rememberPayer(ref: string, email: string): void {
    if (this.deps.collectionWebhook === 'documented' && this.deps.notify)
      this.emails.set(ref, email);
  }

  /** Moves `ref` to `status` now and raises its webhook when the status is final. */
  move(ref: string, status: LedgerStatus, moneyMoved: boolean, gatewayResponse?: string): void {
    const entry = this.deps.ledger.transition(ref, {
      status,
      moneyMoved,
      gatewayResponse: gatewayResponse ?? GATEWAY_RESPONSE[status],
      nowMs: this.deps.now(),
    });
    if (entry) this.emit(ref, entry);
  }

  /** The same, after `settleMs`; `then` runs right after (a reversal following a success). */
  later(
    ref: string,
    status: LedgerStatus,
    moneyMoved: boolean,
    opts: { gatewayResponse?: string; then?: () => void } = {},
  ): void {
    this.deps.timers.after(this.deps.settleMs, () => {
      this.move(ref, status, moneyMoved, opts.gatewayResponse);
      opts.then?.();
    });
  }

  emit(ref: string, entry: StoredEntry): void {
    if (!this.deps.notify || entry.status === 'pending') return;
    if (entry.kind === 'charge' && this.deps.collectionWebhook === 'documented') {
      const type = DOCUMENTED_TYPE[entry.status];
      if (type === undefined) return;
      const email = this.emails.get(ref);
      this.deps.notify(ref, {
        id: `evt_sandbox_${++this.eventSeq}`,
        type,
        created: iso(entry.updatedAtMs),
        data: {
          reference: ref,
          // The sample carries a JSON number; major units, the total charged (as verify's amount).
          amount: Number(major(entry.amount + entry.feeMinor)),
          currency: entry.currency,
          status: statusWord(this.deps.statusWords, entry),
          ...(email !== undefined ? { customer: { email } } : {}),
        },
      });
      return;
    }
    const notifyType = NOTIFY_TYPE[entry.status];
    if (notifyType === undefined) return;
    const words = this.deps.statusWords;
    this.deps.notify(
      ref,
      entry.kind === 'payout'
        ? { notify: 'payout', notifyType, data: payoutData(ref, entry, words) }
        : { notify: 'transaction', notifyType, data: chargeData(ref, entry, words) },
    );
  }
}
