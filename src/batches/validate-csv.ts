/**
 * Streaming validation of a bulk batch file (docs/product.md §6): bytes in, typed rows and
 * line-numbered errors out, with memory that stays flat however long the file is. The framing
 * (csv-parse, the UTF-8 and line-length guard, physical line numbers) is the shared reader of
 * `input/csv-reader.ts`; the fields are the payment instructions of `input/instructions.ts`. What
 * is the batch's own: the field-size limit per row, references unique in a file (sharing one
 * namespace with the line numbers of rows without one), the error budget, the totals, and the
 * content hash that identifies the batch (identity.ts), fed every row as it is read.
 */
import type { InstructionType } from '../kernel/intent.ts';
import {
  DEFAULT_MAX_FIELD_BYTES,
  DEFAULT_MAX_LINE_BYTES,
  issueAt,
  positiveInteger,
  type CsvError,
  type CsvInput,
} from '../input/csv-reader.ts';
import { readCsvTable, type CsvTableEnd } from '../input/csv-table.ts';
import { shown } from '../input/fields.ts';
import {
  parseInstructionRecord,
  refusedRowEcho,
  resolveHeader,
  type HeaderLayout,
  type RefusedRowEcho,
  type RowIssue,
  type RowOf,
} from '../input/instructions.ts';
import { ClaimTable } from './claim-table.ts';
import { ContentIdentity } from './identity.ts';

export { DEFAULT_MAX_FIELD_BYTES, DEFAULT_MAX_LINE_BYTES };
export type { CsvError, CsvInput, RefusedRowEcho };

/** What to validate the file as, and the limits that keep a hostile file cheap. */
export interface ValidateCsvOptions<T extends InstructionType = InstructionType> {
  type: T;
  /** Longest accepted field, in UTF-8 bytes. Default 4096. */
  maxFieldBytes?: number;
  /** Longest accepted physical line, and longest record (a record spans lines when a quoted field
   * holds a line break), in bytes. Bounds memory on a file with no line breaks or an unclosed
   * quote. Default 16384. */
  maxLineBytes?: number;
  /** Errors listed before the rest are only counted (one final error says how many). Default 1000. */
  maxErrors?: number;
}

/** Default of {@link ValidateCsvOptions.maxErrors}. */
export const DEFAULT_MAX_ERRORS = 1000;

/** Row counts of a file; `rows` = `valid` + `invalid`. */
export interface CsvTotals {
  /** Data rows read (blank lines and the header are not rows). */
  rows: number;
  valid: number;
  invalid: number;
}

/**
 * What {@link validateCsvStream} yields: a valid row or one error. Test with `item.row`. Each error
 * of a refused row carries the row's `echo` (input/instructions.ts `refusedRowEcho`: its reference
 * and meta values, nothing else); a row whose fields cannot be matched to the header (a wrong
 * field count) and a structural error have none.
 */
export type CsvItem<R> =
  { row: R; error?: undefined } | { error: CsvError; echo?: RefusedRowEcho; row?: undefined };

/** The stream's return value, available once it is exhausted. */
export interface CsvSummary {
  totals: CsvTotals;
  /** `meta_*` keys (without the prefix) in header order; empty when the header was refused. */
  metaKeys: string[];
  /**
   * SHA-256 (hex) of the file's canonical content (identity.ts); undefined when the file was not
   * read to its end (a structural error) or has no usable header.
   */
  contentHash: string | undefined;
  /** SHA-256 (hex) of the data rows' line numbers (identity.ts); undefined with `contentHash`. */
  layoutHash: string | undefined;
}

/** The collected result of {@link validateCsv}. */
export interface CsvValidation<R> extends CsvSummary {
  rows: R[];
  errors: CsvError[];
}

/** Caps how many errors are listed; the rest are counted and summarised once at the end. */
class ErrorBudget {
  private listed = 0;
  private unlisted = 0;
  private firstUnlistedLine = 0;

  constructor(private readonly max: number) {}

  /** Whether this error should be yielded. */
  admit(error: CsvError): boolean {
    if (this.listed < this.max) {
      this.listed++;
      return true;
    }
    if (this.unlisted === 0) this.firstUnlistedLine = error.line;
    this.unlisted++;
    return false;
  }

  summary(): CsvError | undefined {
    if (this.unlisted === 0) return undefined;
    return {
      line: this.firstUnlistedLine,
      message: `${this.unlisted} more errors from this line on are not listed (limit ${this.max})`,
    };
  }
}

/**
 * Why a row's intent key is already taken; `previous` is negative when taken by a line number.
 * A reference is quoted as every message quotes input (`shown`: never a card number).
 */
function clashMessage(reference: string | undefined, line: number, previous: number): string {
  if (reference === undefined) {
    return `row has no reference, so it is keyed by its line number ${line}, which line ${previous} uses as its reference`;
  }
  if (previous < 0) {
    return `reference "${shown(reference)}" equals the line number of line ${-previous}, which has no reference and is keyed by it`;
  }
  return `reference "${shown(reference)}" is already used on line ${previous} (references must be unique in a file, ignoring case)`;
}

/**
 * Validates a batch file as it streams, yielding each valid row or error in file order; rows are
 * not kept, so a caller can spill them in chunks. Only the references seen so far are held, to
 * refuse duplicates. The generator's return value holds the totals and the meta keys.
 *
 * Structural problems (bad header, unbalanced quotes, invalid UTF-8, an over-long line) end the
 * stream after one error, because record boundaries after them cannot be trusted; row problems
 * are reported per row and validation goes on. Input I/O errors are thrown, not reported.
 */
export async function* validateCsvStream<T extends InstructionType>(
  input: CsvInput,
  options: ValidateCsvOptions<T>,
): AsyncGenerator<CsvItem<RowOf<T>>, CsvSummary, undefined> {
  const budget = new ErrorBudget(
    positiveInteger('maxErrors', options.maxErrors, DEFAULT_MAX_ERRORS),
  );

  let referenceIndex = -1;
  const identity = new ContentIdentity(options.type);
  const table = readCsvTable<HeaderLayout>(input, {
    maxFieldBytes: options.maxFieldBytes,
    maxLineBytes: options.maxLineBytes,
    resolveHeader: (fields) => {
      const header = resolveHeader(options.type, fields);
      if (!header.ok) return { issues: header.issues };
      referenceIndex = header.layout.names.indexOf('reference');
      identity.header(header.layout.names);
      return { layout: header.layout };
    },
  });
  const totals: CsvTotals = { rows: 0, valid: 0, invalid: 0 };
  /** Lower-cased reference, or the line number of a row without one → the line that claimed it. */
  const claimed = new ClaimTable();

  let end: CsvTableEnd<HeaderLayout>;
  try {
    for (;;) {
      const step = await table.next();
      if (step.done === true) {
        end = step.value;
        break;
      }
      const { line, fields: record, misaligned, oversized } = step.value;
      const layout = step.value.layout;
      totals.rows++;
      identity.row(record, line);
      const issues: RowIssue[] = [...step.value.issues];
      let row: RowOf<T> | undefined;
      let echo: RefusedRowEcho | undefined;
      if (!misaligned) {
        const result = parseInstructionRecord(options.type, layout, record, line, oversized);
        const reference = result.ok ? result.row.reference : result.reference;
        if (result.ok) row = result.row;
        else {
          issues.push(...result.issues);
          echo = result.echo;
        }

        // A row without a reference is keyed by its line number (docs/product.md §5), so line
        // numbers and references share one namespace: reference "12" and an unreferenced row
        // on line 12 would derive the same intent key, and one of them would never be paid. A
        // malformed reference is already an error and claims nothing.
        const rawReference = referenceIndex === -1 ? '' : (record[referenceIndex] ?? '');
        const byLine = rawReference.trim() === '';
        const key = byLine ? String(line) : reference?.toLowerCase();
        if (key !== undefined) {
          // Negative marks a claim by line number, so the message can say which clash it is.
          const previous = claimed.claim(key, byLine ? -line : line);
          if (previous !== undefined) {
            issues.push({
              column: 'reference',
              message: clashMessage(reference, line, previous),
            });
          }
        }
      }

      if (row !== undefined && issues.length === 0) {
        totals.valid++;
        yield { row };
      } else {
        totals.invalid++;
        // A valid row refused here (its reference or line is taken) shows what any refused row does.
        echo ??= row !== undefined ? refusedRowEcho(row.reference, row.meta) : undefined;
        for (const issue of issues) {
          const error = issueAt(line, issue);
          if (budget.admit(error)) yield echo === undefined ? { error } : { error, echo };
        }
      }
    }
  } finally {
    // Reached early when the consumer stops iterating: closes the parser and the input.
    await table.return(undefined as never);
  }

  if (end.headerErrors.length > 0) {
    for (const error of end.headerErrors) yield { error };
    return { totals, metaKeys: [], contentHash: undefined, layoutHash: undefined };
  }
  if (end.fatalInRow) {
    // The record that broke the file is a row, and an invalid one.
    totals.rows++;
    totals.invalid++;
  }
  const unlisted = budget.summary();
  if (unlisted !== undefined) yield { error: unlisted };
  if (end.fatal !== undefined) {
    yield { error: end.fatal };
  } else if (end.layout !== undefined && totals.rows === 0) {
    yield { error: { line: end.headerLine, message: 'the file has a header but no rows' } };
  }
  const complete = end.fatal === undefined && end.layout !== undefined;
  return {
    totals,
    metaKeys: [...(end.layout?.metaKeys ?? [])],
    contentHash: complete ? identity.digest() : undefined,
    layoutHash: complete ? identity.layoutDigest() : undefined,
  };
}

/**
 * Validates a whole batch file and collects the result. A thin wrapper over
 * {@link validateCsvStream}; holds every valid row, so prefer the stream for large files.
 */
export async function validateCsv<T extends InstructionType>(
  input: CsvInput,
  options: ValidateCsvOptions<T>,
): Promise<CsvValidation<RowOf<T>>> {
  const rows: RowOf<T>[] = [];
  const errors: CsvError[] = [];
  const stream = validateCsvStream(input, options);
  for (;;) {
    const step = await stream.next();
    if (step.done === true) return { rows, errors, ...step.value };
    const item = step.value;
    if (item.error !== undefined) errors.push(item.error);
    else if (item.row !== undefined) rows.push(item.row);
  }
}

/** `line 7, amount: amount "1,500" must be …` — the form the CLI prints. */
export function formatCsvError(error: CsvError): string {
  const where =
    error.column === undefined ? `line ${error.line}` : `line ${error.line}, ${error.column}`;
  return `${where}: ${error.message}`;
}
