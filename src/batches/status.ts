/**
 * The status of a batch (`billing batch status`, `GET /batches/:id`): counts by state, money per
 * currency, and the created, enqueued and finished times. O(1): it reads the counters the tracker
 * keeps (tracker.ts), never the rows.
 */
import { formatMajor, type AmountMinor } from '../kernel/money.ts';
import { TRACKED_STATES, type BatchRecord, type BatchStore, type TrackedState } from './ports.ts';

/** Money of one currency in a batch, in major units (`"1500.50"`) and minor units. */
export interface CurrencyStatus {
  /** Valid rows in this currency. */
  rows: number;
  amount: string;
  amountMinor: number;
  /** Money per tracked state (succeeded, failed, pending, reversed, needs_review). */
  byState: Record<TrackedState, { amount: string; amountMinor: number }>;
}

/** The status of a batch (`billing batch status`, `GET /batches/:id`). */
export interface BatchStatus {
  id: string;
  type: string;
  state: BatchRecord['state'];
  source: string;
  rows: number;
  valid: number;
  invalid: number;
  /**
   * Rows by state. `in_progress`: queued, being submitted, or awaiting reconciliation of an
   * unknown outcome (states that publish no event).
   */
  counts: Record<TrackedState | 'in_progress', number>;
  /** Rows in a state final for the batch (succeeded, failed, reversed, needs_review). */
  final: number;
  totals: Record<string, CurrencyStatus>;
  createdAt: string;
  ingestedAt?: string;
  finishedAt?: string;
  /** Who submitted it (HTTP token name, or `cli:<os user>`). */
  submittedBy?: string;
  /** Approval (BATCH_APPROVAL): who approved it and when. */
  approvedBy?: string;
  approvedAt?: string;
  /** A cancel: who asked, when, and how many queued rows it failed (reason `canceled`). */
  canceledBy?: string;
  canceledAt?: string;
  canceledRows?: number;
  /** The batch whose failed rows this one retries, and the batch retrying this one's. */
  retryOf?: string;
  retriedBy?: string;
}

function money(minor: number): { amount: string; amountMinor: number } {
  return { amount: formatMajor(minor as AmountMinor), amountMinor: minor };
}

/** The public view of a batch record. */
export function toBatchStatus(b: BatchRecord): BatchStatus {
  const tracked = TRACKED_STATES.reduce((sum, s) => sum + b.counts[s], 0);
  const totals: Record<string, CurrencyStatus> = {};
  const currencies = new Set<string>(Object.keys(b.totals));
  for (const perState of Object.values(b.amounts)) {
    for (const c of Object.keys(perState)) currencies.add(c);
  }
  for (const currency of [...currencies].sort()) {
    const input = b.totals[currency];
    totals[currency] = {
      rows: input?.rows ?? 0,
      ...money(input?.amount ?? 0),
      byState: Object.fromEntries(
        TRACKED_STATES.map((s) => [s, money(b.amounts[s]?.[currency] ?? 0)]),
      ) as CurrencyStatus['byState'],
    };
  }
  return {
    id: b.id,
    type: b.type,
    state: b.state,
    source: b.source,
    rows: b.rows,
    valid: b.valid,
    invalid: b.invalid,
    counts: { in_progress: Math.max(0, b.expected - tracked), ...b.counts },
    final: b.final,
    totals,
    createdAt: new Date(b.createdAt).toISOString(),
    ...(b.ingestedAt !== undefined ? { ingestedAt: new Date(b.ingestedAt).toISOString() } : {}),
    ...(b.finishedAt !== undefined ? { finishedAt: new Date(b.finishedAt).toISOString() } : {}),
    ...(b.submittedBy !== undefined ? { submittedBy: b.submittedBy } : {}),
    ...(b.approvedBy !== undefined ? { approvedBy: b.approvedBy } : {}),
    ...(b.approvedAt !== undefined ? { approvedAt: new Date(b.approvedAt).toISOString() } : {}),
    ...(b.canceledAt !== undefined
      ? {
          canceledAt: new Date(b.canceledAt).toISOString(),
          ...(b.canceledBy !== undefined ? { canceledBy: b.canceledBy } : {}),
          canceledRows: b.canceledRows,
        }
      : {}),
    ...(b.retryOf !== undefined ? { retryOf: b.retryOf } : {}),
    ...(b.retriedBy !== undefined ? { retriedBy: b.retriedBy } : {}),
  };
}

/** The batch's status, or undefined when there is no such batch. O(1): counters, not rows. */
export async function batchStatus(
  deps: { batches: Pick<BatchStore, 'get'> },
  id: string,
): Promise<BatchStatus | undefined> {
  const batch = await deps.batches.get(id);
  return batch ? toBatchStatus(batch) : undefined;
}
