/**
 * Streaming validation of a bulk batch file (PRODUCT.md 6): bytes in, typed rows and line-numbered
 * errors out, with memory that stays flat however long the file is. csv-parse does the RFC 4180
 * work; around it, an input guard checks UTF-8 and line length on whole lines before the parser
 * sees them, and this file counts physical lines itself so that every error names the line a
 * person sees in an editor.
 *
 * Line numbers are physical: the header is line 1 (a BOM does not count), every LF ends a line
 * (CRLF is one line end), and a record is reported at the line where it STARTS, even when a quoted
 * field carries it over several lines. csv-parse's own `info.lines` is not used because it counts
 * a CRLF inside a quoted field as two lines.
 */
import { CsvError as CsvParseError, Parser } from 'csv-parse';
import type { IntentType } from '../kernel/intent.ts';
import {
  parseChargeRecord,
  parsePayoutRecord,
  resolveHeader,
  type HeaderLayout,
  type RecordResult,
  type RowIssue,
  type RowOf,
} from '../input/instructions.ts';
import { ClaimTable } from './claim-table.ts';

/** One problem in a batch file. `line` is the physical line (header = 1); `column` is the
 * canonical column name when the problem belongs to one. */
export interface CsvError {
  line: number;
  column?: string;
  message: string;
}

/** What to validate the file as, and the limits that keep a hostile file cheap. */
export interface ValidateCsvOptions<T extends IntentType = IntentType> {
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

/** Defaults of {@link ValidateCsvOptions}. */
export const DEFAULT_MAX_FIELD_BYTES = 4096;
export const DEFAULT_MAX_LINE_BYTES = 16_384;
export const DEFAULT_MAX_ERRORS = 1000;

/** Row counts of a file; `rows` = `valid` + `invalid`. */
export interface CsvTotals {
  /** Data rows read (blank lines and the header are not rows). */
  rows: number;
  valid: number;
  invalid: number;
}

/** What {@link validateCsvStream} yields: a valid row or one error. Test with `item.row`. */
export type CsvItem<R> = { row: R; error?: undefined } | { error: CsvError; row?: undefined };

/** The stream's return value, available once it is exhausted. */
export interface CsvSummary {
  totals: CsvTotals;
  /** `meta_*` keys (without the prefix) in header order; empty when the header was refused. */
  metaKeys: string[];
}

/** The collected result of {@link validateCsv}. */
export interface CsvValidation<R> extends CsvSummary {
  rows: R[];
  errors: CsvError[];
}

type CsvChunk = Buffer | Uint8Array | string;

/** The whole file as text or bytes, or its chunks from a Node stream or any (async) iterable:
 * a file stream, an HTTP body, a test array. */
export type CsvInput =
  CsvChunk | Iterable<CsvChunk> | AsyncIterable<CsvChunk> | NodeJS.ReadableStream;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Checks the raw bytes on whole-line boundaries before csv-parse sees them: UTF-8 validity (a
 * fatal TextDecoder in streaming mode) and line length. On the first failure it records one fatal
 * error and stops, having passed on every byte up to the bad line, so rows before it are still
 * validated and errors stay in line order. Holding back the partial last line of each chunk means
 * a failure can be pinned to one line, and is what bounds memory when a file has no line breaks.
 */
class InputGuard {
  fatal: CsvError | undefined;
  /** LFs in the bytes released so far: the next released byte is on line `lineFeeds + 1`. */
  private lineFeeds = 0;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(private readonly maxLineBytes: number) {}

  async *blocks(input: CsvInput): AsyncGenerator<Buffer, void, undefined> {
    let carry: Buffer | undefined;
    let sniffed = false;
    // A string or a buffer is itself iterable (by character or byte): take it as one chunk.
    const chunks =
      typeof input === 'string' || input instanceof Uint8Array
        ? [input]
        : (input as Iterable<CsvChunk> | AsyncIterable<CsvChunk>);
    for await (const chunk of chunks) {
      const bytes = toBuffer(chunk);
      if (bytes.length === 0) continue;
      const data = carry === undefined ? bytes : Buffer.concat([carry, bytes]);
      if (!sniffed && data.length >= 2) {
        sniffed = true;
        if (isUtf16Bom(data)) {
          this.fatal = { line: 1, message: 'the file is UTF-16; save it as UTF-8 (CSV UTF-8)' };
          return;
        }
      }
      const lastLf = data.lastIndexOf(LF);
      if (lastLf === -1) {
        carry = data;
      } else {
        const block = data.subarray(0, lastLf + 1);
        carry = lastLf + 1 < data.length ? data.subarray(lastLf + 1) : undefined;
        const safe = this.check(block, true);
        if (safe > 0) yield block.subarray(0, safe);
        if (this.fatal !== undefined) return;
      }
      // +1: the CR of a CRLF may be waiting for its LF in the next chunk.
      if (carry !== undefined && carry.length > this.maxLineBytes + 1) {
        this.fatal = this.tooLong(this.lineFeeds + 1);
        return;
      }
    }
    if (carry !== undefined) {
      if (!sniffed && isUtf16Bom(carry)) {
        this.fatal = { line: 1, message: 'the file is UTF-16; save it as UTF-8 (CSV UTF-8)' };
        return;
      }
      // Not streaming: this flushes the decoder, so a sequence cut off by the end is invalid too.
      // (Blocks end at an LF, so without a last partial line nothing can be pending.)
      const safe = this.check(carry, false);
      if (safe > 0) yield carry.subarray(0, safe);
    }
  }

  /** Returns how many leading bytes of `block` are safe to pass on (all of it when fine). */
  private check(block: Buffer, streaming: boolean): number {
    let badUtf8Start = -1;
    try {
      this.decoder.decode(block, { stream: streaming });
    } catch {
      // Clean state at block starts means some line must fail alone; 0 is a safe fallback.
      badUtf8Start = Math.max(0, firstInvalidLine(block));
    }
    let start = 0;
    while (start < block.length) {
      const lf = block.indexOf(LF, start);
      const end = lf === -1 ? block.length : lf;
      const line = this.lineFeeds + 1;
      if (start === badUtf8Start) {
        this.fatal = this.invalidUtf8(line);
        return start;
      }
      const length = end > start && block[end - 1] === CR ? end - start - 1 : end - start;
      if (length > this.maxLineBytes) {
        this.fatal = this.tooLong(line);
        return start;
      }
      if (lf === -1) break;
      this.lineFeeds++;
      start = lf + 1;
    }
    return block.length;
  }

  private invalidUtf8(line: number): CsvError {
    return { line, message: 'line is not valid UTF-8; save the file as UTF-8 (CSV UTF-8)' };
  }

  private tooLong(line: number): CsvError {
    return { line, message: `line is longer than ${this.maxLineBytes} bytes` };
  }
}

function toBuffer(chunk: CsvChunk): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
}

function isUtf16Bom(data: Buffer): boolean {
  return (data[0] === 0xff && data[1] === 0xfe) || (data[0] === 0xfe && data[1] === 0xff);
}

/** Start offset of the first line of `block` that is not valid UTF-8 on its own. An LF never
 * occurs inside a multi-byte sequence, so lines can be checked independently. */
function firstInvalidLine(block: Buffer): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  while (start < block.length) {
    const lf = block.indexOf(LF, start);
    const end = lf === -1 ? block.length : lf + 1;
    try {
      decoder.decode(block.subarray(start, end));
    } catch {
      return start;
    }
    start = end;
  }
  return -1;
}

function lineFeedsIn(record: readonly string[]): number {
  let count = 0;
  for (const field of record) {
    // Only quoted fields can hold a line break; indexOf first keeps the common case to one scan.
    let at = field.indexOf('\n');
    while (at !== -1) {
      count++;
      at = field.indexOf('\n', at + 1);
    }
  }
  return count;
}

/** Blank lines and rows of empty cells (spreadsheets export both) carry no payment: skipped. */
function isBlank(record: readonly string[]): boolean {
  for (const field of record) if (field.trim() !== '') return false;
  return true;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** Turns a csv-parse failure into an error at the record's start line, without repeating field
 * values (a field may be a card token). */
function describeParseError(
  err: CsvParseError,
  line: number,
  layout: HeaderLayout | undefined,
): CsvError {
  const index = typeof err.column === 'number' ? err.column : undefined;
  const column = layout !== undefined && index !== undefined ? layout.names[index] : undefined;
  const at = (message: string): CsvError =>
    column === undefined ? { line, message } : { line, column, message };
  switch (err.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return at('unbalanced quotes: a quoted field that starts in this record is never closed');
    case 'CSV_INVALID_CLOSING_QUOTE':
      return at(
        'unbalanced quotes: a closing quote is followed by text instead of a comma or line end ' +
          '(write a quote inside a quoted field as "")',
      );
    case 'INVALID_OPENING_QUOTE':
      return at(
        'unbalanced quotes: a quote inside an unquoted field (quote the whole field and write ' +
          'the inner quote as "")',
      );
    case 'CSV_MAX_RECORD_SIZE':
      return at(
        'record is too long: it does not end within the line limit, usually because a quote ' +
          'opened in this record is never closed',
      );
    default:
      return { line, message: `the file is not valid CSV from this record on (${err.code})` };
  }
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

/** Why a row's intent key is already taken; `previous` is negative when taken by a line number. */
function clashMessage(reference: string | undefined, line: number, previous: number): string {
  if (reference === undefined) {
    return `row has no reference, so it is keyed by its line number ${line}, which line ${previous} uses as its reference`;
  }
  if (previous < 0) {
    return `reference "${reference}" equals the line number of line ${-previous}, which has no reference and is keyed by it`;
  }
  return `reference "${reference}" is already used on line ${previous} (references must be unique in a file, ignoring case)`;
}

function issueAt(line: number, issue: RowIssue): CsvError {
  return issue.column === undefined
    ? { line, message: issue.message }
    : { line, column: issue.column, message: issue.message };
}

/**
 * A csv-parse parser that hands records to the caller in batches instead of through its readable
 * side: a parse error destroys the stream and would drop records buffered before it, which must
 * still be validated. Overriding `push` rather than using `on_record` because csv-parse builds an
 * info object for every `on_record` call, which cost 15% of the run on a million rows.
 */
class BatchingParser extends Parser {
  private collected: string[][] = [];

  override push(chunk: unknown): boolean {
    if (chunk === null) return super.push(null);
    this.collected.push(chunk as string[]);
    return true;
  }

  takeRecords(): string[][] {
    const batch = this.collected;
    this.collected = [];
    return batch;
  }
}

/**
 * Feeds whole-line blocks to csv-parse and yields the records each block completes. The return
 * value is the parse error that ended the input, if any.
 */
async function* recordBatches(
  blocks: AsyncIterable<Buffer>,
  maxRecordBytes: number,
): AsyncGenerator<string[][], CsvParseError | undefined, undefined> {
  const parser = new BatchingParser({
    bom: true,
    // Explicit, so CRLF and LF files parse alike, and a lone CR stays data (then refused as a
    // control character in a known column).
    record_delimiter: ['\r\n', '\n'],
    // Field counts are checked per row by the caller, with a message that names the line.
    relax_column_count: true,
    max_record_size: maxRecordBytes,
  });
  // The error also reaches the write/end callback below, which is where it is handled.
  parser.on('error', () => undefined);
  const settle = (error: Error | null | undefined): CsvParseError | undefined => {
    if (error === null || error === undefined) return undefined;
    if (error instanceof CsvParseError) return error;
    throw error;
  };
  try {
    for await (const block of blocks) {
      const error = await new Promise<Error | null | undefined>((resolve) => {
        parser.write(block, resolve);
      });
      const batch = parser.takeRecords();
      if (batch.length > 0) yield batch;
      const parseError = settle(error);
      if (parseError !== undefined) return parseError;
    }
    const error = await new Promise<Error | null | undefined>((resolve) => {
      parser.end(resolve);
    });
    const batch = parser.takeRecords();
    if (batch.length > 0) yield batch;
    return settle(error);
  } finally {
    parser.destroy();
  }
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
export async function* validateCsvStream<T extends IntentType>(
  input: CsvInput,
  options: ValidateCsvOptions<T>,
): AsyncGenerator<CsvItem<RowOf<T>>, CsvSummary, undefined> {
  const maxFieldBytes = positiveInteger(
    'maxFieldBytes',
    options.maxFieldBytes,
    DEFAULT_MAX_FIELD_BYTES,
  );
  const maxLineBytes = positiveInteger(
    'maxLineBytes',
    options.maxLineBytes,
    DEFAULT_MAX_LINE_BYTES,
  );
  const budget = new ErrorBudget(
    positiveInteger('maxErrors', options.maxErrors, DEFAULT_MAX_ERRORS),
  );
  const parseRecord = (options.type === 'charge' ? parseChargeRecord : parsePayoutRecord) as (
    layout: HeaderLayout,
    fields: readonly string[],
    line: number,
    skip?: ReadonlySet<number>,
  ) => RecordResult<RowOf<T>>;

  const guard = new InputGuard(maxLineBytes);
  const batches = recordBatches(guard.blocks(input), maxLineBytes);
  const totals: CsvTotals = { rows: 0, valid: 0, invalid: 0 };
  /** Lower-cased reference, or the line number of a row without one → the line that claimed it. */
  const claimed = new ClaimTable();
  let layout: HeaderLayout | undefined;
  let headerLine = 1;
  let referenceIndex = -1;
  let nextLine = 1;
  let sawRecord = false;
  let fatal: CsvError | undefined;

  try {
    for (;;) {
      const step = await batches.next();
      if (step.done === true) {
        // When the guard cut the input short, the parser's complaint (a quote left open at the
        // cut) is a consequence; the guard's error is the cause.
        if (step.value !== undefined && guard.fatal === undefined) {
          fatal = describeParseError(step.value, nextLine, layout);
        }
        break;
      }
      for (const record of step.value) {
        const line = nextLine;
        nextLine = line + 1 + lineFeedsIn(record);
        if (isBlank(record)) continue;
        sawRecord = true;

        if (layout === undefined) {
          const header = resolveHeader(options.type, record);
          if (!header.ok) {
            for (const issue of header.issues) yield { error: issueAt(line, issue) };
            return { totals, metaKeys: [] };
          }
          layout = header.layout;
          headerLine = line;
          referenceIndex = layout.names.indexOf('reference');
          continue;
        }

        totals.rows++;
        const issues: RowIssue[] = [];
        let row: RowOf<T> | undefined;
        if (record.length !== layout.slots.length) {
          const missing = layout.names[record.length];
          issues.push({
            ...(record.length < layout.slots.length && missing !== undefined
              ? { column: missing }
              : {}),
            message:
              `row has ${record.length} fields but the header has ${layout.slots.length}` +
              (record.length > layout.slots.length ? ' (an unquoted comma in a value?)' : ''),
          });
        } else {
          let oversized: Set<number> | undefined;
          for (let i = 0; i < record.length; i++) {
            const field = record[i] ?? '';
            // A UTF-16 code unit is at most 3 UTF-8 bytes: most fields skip the exact count.
            if (field.length * 3 > maxFieldBytes && Buffer.byteLength(field) > maxFieldBytes) {
              oversized ??= new Set();
              oversized.add(i);
              issues.push({
                column: layout.names[i] ?? `#${i + 1}`,
                message: `field is longer than ${maxFieldBytes} bytes`,
              });
            }
          }
          const result = parseRecord(layout, record, line, oversized);
          const reference = result.ok ? result.row.reference : result.reference;
          if (result.ok) row = result.row;
          else issues.push(...result.issues);

          // A row without a reference is keyed by its line number (PRODUCT.md 5), so line
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
          for (const issue of issues) {
            const error = issueAt(line, issue);
            if (budget.admit(error)) yield { error };
          }
        }
      }
    }
  } finally {
    // Reached early when the consumer stops iterating: closes the parser and the input.
    await batches.return(undefined);
  }

  fatal ??= guard.fatal;
  if (fatal !== undefined && layout !== undefined && fatal.line > headerLine) {
    // The record that broke the file is a row, and an invalid one.
    totals.rows++;
    totals.invalid++;
  }
  const unlisted = budget.summary();
  if (unlisted !== undefined) yield { error: unlisted };
  if (fatal !== undefined) {
    yield { error: fatal };
  } else if (!sawRecord) {
    yield { error: { line: 1, message: 'the file is empty: expected a header row' } };
  } else if (layout !== undefined && totals.rows === 0) {
    yield { error: { line: headerLine, message: 'the file has a header but no rows' } };
  }
  return { totals, metaKeys: [...(layout?.metaKeys ?? [])] };
}

/**
 * Validates a whole batch file and collects the result. A thin wrapper over
 * {@link validateCsvStream}; holds every valid row, so prefer the stream for large files.
 */
export async function validateCsv<T extends IntentType>(
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
