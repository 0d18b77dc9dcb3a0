/**
 * The first pass of a batch submission (see ingest.ts): validates the whole file as it streams,
 * which also computes its content hash (identity.ts, the batch's derived id), and spills the valid
 * rows — card tokens already sealed — and, with skip-invalid, the refused ones to the spill file.
 */
import type { InstructionType } from '../kernel/intent.ts';
import { formatMajor, type AmountMinor } from '../kernel/money.ts';
import type { IntentDraft } from '../kernel/payment.ts';
import type { Sealer } from '../kernel/ports.ts';
import { draftFromRow } from '../input/drafts.ts';
import type { BatchRow } from '../input/instructions.ts';
import type { CurrencyTotal } from './ports.ts';
import { spillError, spillRow, type SpillWriter } from './spill-file.ts';
import {
  validateCsvStream,
  type CsvError,
  type CsvInput,
  type CsvSummary,
  type CsvTotals,
  type RefusedRowEcho,
} from './validate-csv.ts';

/**
 * The most the valid rows of one batch may add up to in one currency, in minor units
 * (90071992547409.91 in major units): Number.MAX_SAFE_INTEGER, the largest total a JS number holds
 * exactly. Batch totals (the stored `totals`, the per-state `a:<state>:<currency>` counters, the
 * status) are numbers; a file over it is refused as a whole (docs/batches.md, "Limits"). Each row
 * is at most AMOUNT_MINOR_MAX (10^14 − 1), so 91 rows at that maximum in one currency pass it.
 */
export const BATCH_TOTAL_MAX_MINOR = Number.MAX_SAFE_INTEGER;

/** The error of the row that takes its currency's total past {@link BATCH_TOTAL_MAX_MINOR}. */
export function totalTooLargeError(line: number, currency: string): CsvError {
  return {
    line,
    column: 'amount',
    message: `the file's ${currency} amounts pass ${formatMajor(BATCH_TOTAL_MAX_MINOR as AmountMinor)} at this row, the most one batch can total in one currency; split the file into smaller batches`,
  };
}

/** Only the payee of the draft is spilled: the key is derived when the row is read back. */
const PLACEHOLDER_KEY = 'bat_pending' as IntentDraft['key'];

/** Accumulates the messages of one invalid row (errors of a row arrive together, in order). */
function describeRowErrors(errors: readonly CsvError[]): string {
  return errors
    .map((e) => (e.column === undefined ? e.message : `${e.column}: ${e.message}`))
    .join('; ');
}

/** What the first pass found. */
export interface Validated {
  totals: CsvTotals;
  metaKeys: string[];
  amounts: Record<string, CurrencyTotal>;
  /** The first `maxListed` errors, in line order (see {@link listErrors}). */
  errors: CsvError[];
  errorCount: number;
  /** Line of the first error not listed; 0 when all are. */
  firstUnlistedLine: number;
  /**
   * Currencies whose total passed {@link BATCH_TOTAL_MAX_MINOR} (an error names the row that did;
   * the currency's `amounts` stop at the rows before it). The file is refused as a whole, even
   * with skip-invalid: no row is invalid by itself.
   */
  totalTooLarge: string[];
  /** The file was read to its end (a structural error stops reading). */
  complete: boolean;
  /** The file's content hash (identity.ts); undefined when it was not read to its end. */
  contentHash: string | undefined;
  /** The hash of its rows' line numbers (identity.ts); undefined with `contentHash`. */
  layoutHash: string | undefined;
}

/** Errors from one source: the first listed, all counted. */
export interface ErrorList {
  errors: readonly CsvError[];
  count: number;
  /** Line of the first error not listed; 0 when all are. */
  firstUnlistedLine: number;
}

/**
 * Errors of several sources (the validator, references other batches hold) as one list in line
 * order: at most `maxListed`, then one line that counts the rest from the first line not listed.
 */
export function listErrors(sources: readonly ErrorList[], maxListed: number): CsvError[] {
  const all = sources.flatMap((s) => s.errors).sort((a, b) => a.line - b.line);
  const listed = all.slice(0, maxListed);
  const count = sources.reduce((n, s) => n + s.count, 0);
  if (count > listed.length) {
    const candidates = [
      ...(all[maxListed] !== undefined ? [all[maxListed].line] : []),
      ...sources.flatMap((s) => (s.firstUnlistedLine > 0 ? [s.firstUnlistedLine] : [])),
    ];
    listed.push({
      line: Math.min(...candidates),
      message: `${count - listed.length} more errors from this line on are not listed (limit ${maxListed})`,
    });
  }
  return listed;
}

/** The file to validate: its bytes, the type of its rows, and whether invalid rows are kept. */
export interface ValidateInput {
  input: CsvInput;
  type: InstructionType;
  skipInvalid?: boolean;
}

/** Validates the whole input, spilling valid rows (and, with skipInvalid, invalid ones). */
export async function validateAndSpill(
  opts: ValidateInput,
  sealer: Sealer,
  spill: SpillWriter | undefined,
  maxListed: number,
): Promise<Validated> {
  const stream = validateCsvStream(opts.input, {
    type: opts.type,
    // Every error is taken here: listed up to maxListed, all of them recorded with skipInvalid.
    maxErrors: Number.MAX_SAFE_INTEGER,
  });
  const amounts: Record<string, CurrencyTotal> = {};
  const errors: CsvError[] = [];
  let errorCount = 0;
  let firstUnlistedLine = 0;
  let spilling = spill !== undefined;
  let pendingLine = 0;
  let pending: CsvError[] = [];
  let pendingEcho: RefusedRowEcho | undefined;
  const totalTooLarge: string[] = [];

  const flushPending = async () => {
    if (pending.length > 0 && spilling && spill) {
      await spill.write(spillError(pendingLine, describeRowErrors(pending), pendingEcho));
    }
    pending = [];
    pendingEcho = undefined;
  };

  let summary: CsvSummary;
  for (;;) {
    const step = await stream.next();
    if (step.done === true) {
      summary = step.value;
      break;
    }
    const item = step.value;
    if (item.error !== undefined) {
      const error = item.error;
      errorCount++;
      if (errors.length < maxListed) errors.push(error);
      else if (firstUnlistedLine === 0) firstUnlistedLine = error.line;
      if (!opts.skipInvalid) {
        // The file will be refused: nothing more is worth spilling.
        spilling = false;
        continue;
      }
      if (error.line !== pendingLine) {
        await flushPending();
        pendingLine = error.line;
      }
      pending.push(error);
      // Every error of a row carries the same echo (none for a line-wide error).
      pendingEcho ??= item.echo;
      continue;
    }
    const row: BatchRow = item.row;
    await flushPending();
    const total = (amounts[row.currency] ??= { rows: 0, amount: 0 as AmountMinor });
    total.rows++;
    // Both are safe integers, so the rounded sum is above the maximum exactly when the sum is.
    const sum = total.amount + row.amount;
    if (sum <= BATCH_TOTAL_MAX_MINOR) {
      total.amount = sum as AmountMinor;
    } else if (!totalTooLarge.includes(row.currency)) {
      // A whole-file error: listed and counted, never spilled as an invalid row.
      totalTooLarge.push(row.currency);
      const error = totalTooLargeError(row.line, row.currency);
      errorCount++;
      if (errors.length < maxListed) errors.push(error);
      else if (firstUnlistedLine === 0) firstUnlistedLine = error.line;
      spilling = false;
    }
    if (!spilling || !spill) continue;
    const draft = draftFromRow(row, { key: PLACEHOLDER_KEY, origin: 'batch' }, sealer);
    await spill.write(spillRow(row, draft.payee));
  }
  await flushPending();
  return {
    totals: summary.totals,
    metaKeys: summary.metaKeys,
    amounts,
    errors,
    errorCount,
    firstUnlistedLine,
    totalTooLarge,
    complete: summary.contentHash !== undefined,
    contentHash: summary.contentHash,
    layoutHash: summary.layoutHash,
  };
}
