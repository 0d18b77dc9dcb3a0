/**
 * What batch features need of batch persistence, typed in batch terms: the {@link BatchStore} port
 * and the records it speaks in. The adapter (store/batch-store.ts) implements it on Redis; the
 * composition root builds it once and hands it to the features (ingest, tracker, status, results).
 */
import type { UnreadableRecordError } from '../kernel/errors.ts';
import type { InstructionType } from '../kernel/intent.ts';
import type { AmountMinor } from '../kernel/money.ts';
import type { BatchIntentRow } from '../kernel/ports.ts';

/**
 * Life of a batch: rows being turned into intents, rows recorded and waiting for a second
 * person's approval (BATCH_APPROVAL, nothing enqueued), all enqueued, every row final.
 */
export const BATCH_STATES = ['ingesting', 'awaiting_approval', 'queued', 'completed'] as const;
export type BatchState = (typeof BATCH_STATES)[number];

/**
 * Intent states a batch counts. `queued`, `submitting` and `unknown` publish no event, so a row
 * in one of them is "in progress" (valid rows minus everything counted here).
 */
export const TRACKED_STATES = [
  'pending',
  'requires_action',
  'succeeded',
  'failed',
  'reversed',
  'needs_review',
] as const;
export type TrackedState = (typeof TRACKED_STATES)[number];

/** Rows and money of the valid rows of one currency, as submitted. */
export interface CurrencyTotal {
  rows: number;
  amount: AmountMinor;
}

/** What a submitter knows when it claims an id. */
export interface BatchInit {
  id: string;
  type: InstructionType;
  source: string;
  /** SHA-256 (hex) of the file's canonical content (identity.ts): a second file under the same
   * id is a conflict. */
  contentHash: string;
  /** SHA-256 (hex) of its rows' line numbers (identity.ts): an interrupted ingest is resumed only
   * by a copy whose rows are on the same lines. Absent on batches stored before it, and on
   * retries of failed rows (their rows are not read from a file). */
  layoutHash?: string;
  rows: number;
  valid: number;
  invalid: number;
  skipInvalid: boolean;
  /** Rows may reuse references of other batches of the type (`--allow-reused-references`). Kept
   * so that a resumed ingest decides as the first one did. Default false. */
  allowReusedReferences?: boolean;
  metaKeys: readonly string[];
  /** Valid rows and money per currency. Rows refused while they are enqueued (a reference that
   * another batch holds) are taken out, with `valid`, `invalid` and `expected`. */
  totals: Readonly<Record<string, CurrencyTotal>>;
  /** Who submitted it: the HTTP token's name, or `cli:<os user>`. Absent on older batches. */
  submittedBy?: string;
  /** Rows are recorded but not enqueued until approved (BATCH_APPROVAL). Default false. */
  holdForApproval?: boolean;
  /** A retry of the failed rows of this batch (operations.ts). */
  retryOf?: string;
}

/** A stored batch. */
export interface BatchRecord extends BatchInit {
  allowReusedReferences: boolean;
  state: BatchState;
  /** Rows that became intents (`valid`). */
  expected: number;
  /** Rows counted per tracked intent state. */
  counts: Record<TrackedState, number>;
  /** Money per tracked state and currency, minor units. */
  amounts: Partial<Record<TrackedState, Record<string, number>>>;
  /** Rows in a state final for the batch. */
  final: number;
  createdAt: number;
  ingestedAt?: number;
  finishedAt?: number;
  /** While ingesting: until when the current ingester's claim holds. */
  leaseUntil?: number;
  holdForApproval: boolean;
  approvedBy?: string;
  approvedAt?: number;
  canceledBy?: string;
  canceledAt?: number;
  /** Rows the cancel moved from `queued` to `failed` (reason `canceled`). */
  canceledRows: number;
  /** The batch retrying this one's failed rows. */
  retriedBy?: string;
}

/** Outcome of {@link BatchStore.approve}. */
export type ApproveResult =
  | { ok: true; already: boolean; notRequired?: boolean }
  | {
      ok: false;
      why: 'missing' | 'same_approver' | 'canceled' | 'not_awaiting_approval';
      state?: BatchState;
    };

/** Outcome of {@link BatchStore.claim}. */
export type ClaimResult = { created: true } | { created: false; batch: BatchRecord };

/**
 * A refused row (kept for the results file): by validation with `--skip-invalid`, or while it is
 * enqueued (a reference or an intent key another batch holds). `reference` and `meta` are what
 * input/instructions.ts `refusedRowEcho` keeps of its cells, where the row has them; rows stored
 * before they were kept have neither.
 */
export interface InvalidRow {
  line: number;
  message: string;
  reference?: string;
  /** `meta_*` values keyed without the prefix. */
  meta?: Record<string, string>;
}

/** The batch row that first used a reference, among the batches of one type. */
export interface ReferenceHolder {
  batchId: string;
  line: number;
}

/** A row that claims its reference as it is enqueued ({@link BatchStore.claimReferences}). */
export interface ReferenceClaim {
  /** As written in the file. */
  reference: string;
  line: number;
  amount: AmountMinor;
  currency: string;
  /** The row's `meta_*` values, kept with it if it is refused. */
  meta?: Readonly<Record<string, string>>;
}

/** A row {@link BatchStore.claimReferences} refused: its reference is another batch's. */
export interface RefusedReference extends ReferenceClaim {
  holder: ReferenceHolder;
}

/** One chunk's reference claims. */
export interface ClaimReferencesInput {
  batchId: string;
  type: InstructionType;
  rows: readonly ReferenceClaim[];
  /** Accept a reference another batch holds (it stays that batch's) instead of refusing the row. */
  allowReused: boolean;
  /**
   * The invalid-row message of a refused row, with `{reference}`, `{batch}` and `{line}` standing
   * for the row's reference and the holder's batch id and line.
   */
  messageTemplate: string;
}

/** What {@link BatchStore.claimReferences} did with a chunk. */
export interface ClaimReferencesResult {
  /** Rows refused (not to be enqueued), in the order given. */
  refused: RefusedReference[];
  /** Rows accepted although another batch holds their reference (`allowReused`). */
  reused: number;
}

/** One payment event for a batch row, as the tracker hands it to {@link BatchStore.applyEvents}. */
export interface BatchRowEvent {
  streamId: string;
  intentKey: string;
  batchId: string;
  state: TrackedState;
}

/**
 * Outcome of {@link BatchStore.applyEvents}. `refused`: the store refused the step itself (e.g. a
 * corrupted intent it cannot read), so nothing was applied and nothing acknowledged; a lost
 * connection is thrown instead, as it says nothing about the events.
 */
export type ApplyEventsResult = { ok: true; completed: string[] } | { ok: false; refused: string };

/**
 * Batch persistence. The id is claimed atomically (create-if-absent), so two uploads of one file
 * make one batch; the claimer holds a lease on the ingest, renewed while it works, and a submitter
 * that finds a lapsed lease takes the ingest over. Every state change is atomic.
 */
export interface BatchStore {
  /**
   * Creates the batch in `ingesting`, owned by `owner` until `now + leaseMs`, unless the id is
   * taken; then returns the stored batch instead.
   */
  claim(init: BatchInit, owner: string, now: number, leaseMs: number): Promise<ClaimResult>;
  /** Takes over an ingest whose lease expired before `now`; true when this caller now owns it. */
  takeOver(id: string, owner: string, now: number, leaseMs: number): Promise<boolean>;
  /** Extends the ingest lease; false when `owner` no longer holds it (taken over, or done). */
  renew(id: string, owner: string, now: number, leaseMs: number): Promise<boolean>;
  /**
   * Marks every row enqueued (`queued`, or `completed` if all are already final); a batch held
   * for approval goes to `awaiting_approval` instead. Idempotent.
   */
  finishIngest(id: string, now: number): Promise<BatchState>;

  /** The batch, or undefined. */
  get(id: string): Promise<BatchRecord | undefined>;
  /** Records rows refused by validation (idempotent: one per line). */
  addInvalid(id: string, rows: readonly InvalidRow[]): Promise<void>;
  /** Refused rows in line order, `offset` from the first. */
  invalidRows(id: string, offset: number, limit: number): Promise<InvalidRow[]>;
  /**
   * Remembers lines whose row reference is their own line number. Their intent key looks exactly
   * like that of a row without a reference (`bat_<id>_<line>`), and the results file must still
   * tell the two apart.
   */
  markReferencedLines(id: string, lines: readonly number[]): Promise<void>;
  /** For each line, whether {@link BatchStore.markReferencedLines} recorded it. */
  referencedLines(id: string, lines: readonly number[]): Promise<boolean[]>;
  /**
   * The registry of row references of `type` (one per type, compared ignoring case, never
   * released): who holds each of `references`, or undefined when none does. A read; claims are
   * {@link BatchStore.claimReferences}.
   */
  referenceHolders(
    type: InstructionType,
    references: readonly string[],
  ): Promise<(ReferenceHolder | undefined)[]>;
  /**
   * Claims the references of a chunk of rows of batch `batchId`, in one atomic step per chunk:
   * a free reference becomes this row's; one this batch already holds (a resumed or repeated
   * ingest) is kept; one another batch holds is accepted with `allowReused` (and stays the other
   * batch's), otherwise the row is refused: recorded as an invalid row (line order, once per line)
   * and taken out of the batch's `valid`, `expected` and `totals`, into `invalid`. Idempotent:
   * claiming the same rows again changes nothing and reports the same refusals.
   */
  claimReferences(input: ClaimReferencesInput): Promise<ClaimReferencesResult>;
  /**
   * Named fields of a batch's intents (the results file), one array per key, in order; null for a
   * field (or an intent) that is absent.
   */
  intentFields(keys: readonly string[], fields: readonly string[]): Promise<(string | null)[][]>;
  /**
   * Applies row events to their batches' counters and acknowledges `ackIds` in consumer group
   * `group` of the events stream, atomically (an event is counted exactly when it is
   * acknowledged); reports the batches that became complete.
   */
  applyEvents(
    group: string,
    events: readonly BatchRowEvent[],
    ackIds: readonly string[],
    now: number,
  ): Promise<ApplyEventsResult>;
  /**
   * Counts the rows of every running (`queued`) batch from their intents' current state, as of
   * the events stream's last entry: what the tracker does when the stream's trim removed events
   * before it read them (their rows' counts were behind, and a batch whose last rows' events were
   * lost never completed). Idempotent, and safe beside trackers applying events. Reports how many
   * batches and rows it went through and the batches that became complete.
   */
  resyncRunning(now: number): Promise<{ batches: number; rows: number; completed: string[] }>;
}

/**
 * What approval, cancel and retry need of batch persistence besides {@link BatchStore} (its own
 * port, so fakes of the tracker's store need not grow). The Redis adapter implements both.
 */
export interface BatchOperationsStore {
  /** Records rows of a batch held for approval (one per line; idempotent). Not intents yet. */
  holdRows(id: string, rows: readonly BatchIntentRow[]): Promise<void>;
  /** Held rows in line order, `offset` from the first. */
  heldRows(id: string, offset: number, limit: number): Promise<BatchIntentRow[]>;
  /**
   * Records the approval of a batch `awaiting_approval` by `by`, unless `by` submitted it or it
   * was canceled. Approving an approved batch again reports `already`. Atomic.
   */
  approve(id: string, by: string, now: number): Promise<ApproveResult>;
  /** Ends a release of held rows: `awaiting_approval → queued` (or `completed`). Idempotent. */
  finishRelease(id: string, now: number): Promise<BatchState>;
  /**
   * Marks the batch canceled by `by` (first cancel wins; later ones keep it). Returns the batch
   * after the call, or undefined when there is none.
   */
  markCanceled(id: string, by: string, now: number): Promise<BatchRecord | undefined>;
  /** Counts the row on `line` as one the cancel moved to failed; a line counts once. */
  addCanceledRow(id: string, line: number): Promise<void>;
  /** Records on `sourceId` that `retryId` retries its failed rows. */
  linkRetry(sourceId: string, retryId: string): Promise<void>;
  /**
   * Refuses rows of batch `id` while they are enqueued (own-intents.ts: their intent key is
   * another batch's): each is recorded as an invalid row with its message and taken out of the
   * batch's `valid`, `expected` and `totals`, into `invalid`, once per line (idempotent). Returns
   * how many this call refused.
   */
  refuseRows(id: string, rows: readonly RefusedRow[]): Promise<number>;
}

/** A row {@link BatchOperationsStore.refuseRows} takes out of its batch. */
export interface RefusedRow {
  line: number;
  amount: AmountMinor;
  currency: string;
  /** The invalid row's message (the results file's `reason`). */
  message: string;
  /** The row's reference, kept with it (see {@link InvalidRow}). */
  reference?: string;
  /** The row's `meta_*` values, kept with it. */
  meta?: Readonly<Record<string, string>>;
}

/** One page of batch ids, newest first. */
export interface BatchIdPage {
  ids: string[];
  /** Opaque; absent on the last page. */
  next?: string;
}

/** A list cursor this API did not return, or returned for another status. */
export class CursorError extends RangeError {}

/** Batch lists (list.ts): pages of one creation-time index, so a page costs what it returns. */
export interface BatchListStore {
  /**
   * Ids of the batches in `status` (every batch when undefined), newest first, at most `limit`,
   * after `cursor` (a previous page's `next`). Throws {@link CursorError} for a bad cursor.
   */
  listIds(status: BatchState | undefined, limit: number, cursor?: string): Promise<BatchIdPage>;
  /**
   * The batches of `ids`, in order; undefined for an id with no batch. One round trip. A batch
   * that does not parse throws its UnreadableRecordError (kernel/errors.ts).
   */
  getMany(ids: readonly string[]): Promise<(BatchRecord | undefined)[]>;
  /**
   * As getMany, but a batch that does not parse is its UnreadableRecordError in the answer, and
   * the others are read: for the list, which leaves it out and logs it.
   */
  readMany(ids: readonly string[]): Promise<(BatchRecord | UnreadableRecordError | undefined)[]>;
  /**
   * Adds batches created before the index of every batch existed to it (once, after upgrading:
   * `billing batch reindex`). Idempotent; returns how many batches the index holds.
   */
  reindexCreated(): Promise<number>;
}

/** The batch store of ingest, the operations and the lists (approval.ts, operations.ts, list.ts). */
export type FullBatchStore = BatchStore & BatchOperationsStore & BatchListStore;
