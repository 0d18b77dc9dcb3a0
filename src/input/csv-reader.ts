/**
 * (Just over 400 lines: the reader's line counting, input guard and csv-parse wiring form one
 * state machine; splitting it would pass its state between files.)
 *
 * The streaming CSV reader shared by every CSV input (batch files, subscription import): bytes in,
 * records with their line numbers out, with memory that stays flat however long the file is.
 * csv-parse does the RFC 4180 work; around it, an input guard checks UTF-8 and line length on
 * whole lines before the parser sees them, and this file counts physical lines itself so that
 * every error names the line a person sees in an editor. What the fields mean is the record
 * parser's business (`record.ts`).
 *
 * Line numbers are physical: the header is line 1 (a BOM does not count), every LF ends a line
 * (CRLF is one line end), and a record is reported at the line where it STARTS, even when a quoted
 * field carries it over several lines. csv-parse's own `info.lines` is not used because it counts
 * a CRLF inside a quoted field as two lines.
 */
import { CsvError as CsvParseError, Parser } from 'csv-parse';
import type { RowIssue } from './record.ts';

/** One problem in a CSV file. `line` is the physical line (header = 1); `column` is the
 * canonical column name when the problem belongs to one. */
export interface CsvError {
  line: number;
  column?: string;
  message: string;
}

/** Longest accepted field, in UTF-8 bytes, unless a caller says otherwise. */
export const DEFAULT_MAX_FIELD_BYTES = 4096;
/** Longest accepted physical line and record, in bytes, unless a caller says otherwise. */
export const DEFAULT_MAX_LINE_BYTES = 16_384;

type CsvChunk = Buffer | Uint8Array | string;

/** The whole file as text or bytes, or its chunks from a Node stream or any (async) iterable:
 * a file stream, an HTTP body, a test array. */
export type CsvInput =
  CsvChunk | Iterable<CsvChunk> | AsyncIterable<CsvChunk> | NodeJS.ReadableStream;

/** One non-blank record and the physical line it starts on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** A problem that ends the file, because record boundaries after it cannot be trusted: UTF-16,
 * invalid UTF-8, an over-long line, or broken CSV. `field` is the index of the field the parser
 * stopped in, when it is known; {@link fatalError} turns it into a column name. */
export interface CsvFatal {
  line: number;
  message: string;
  field?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const UTF16 = 'the file is UTF-16; save it as UTF-8 (CSV UTF-8)';

/**
 * Checks the raw bytes on whole-line boundaries before csv-parse sees them: UTF-8 validity (a
 * fatal TextDecoder in streaming mode) and line length. On the first failure it records one fatal
 * error and stops, having passed on every byte up to the bad line, so rows before it are still
 * validated and errors stay in line order. Holding back the partial last line of each chunk means
 * a failure can be pinned to one line, and is what bounds memory when a file has no line breaks.
 */
class InputGuard {
  fatal: CsvFatal | undefined;
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
          this.fatal = { line: 1, message: UTF16 };
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
        this.fatal = { line: 1, message: UTF16 };
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
        this.fatal = {
          line,
          message: 'line is not valid UTF-8; save the file as UTF-8 (CSV UTF-8)',
        };
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

  private tooLong(line: number): CsvFatal {
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

/** Blank lines and rows of empty cells (spreadsheets export both) carry nothing: skipped. */
function isBlank(record: readonly string[]): boolean {
  for (const field of record) if (field.trim() !== '') return false;
  return true;
}

/** A limit option: `fallback` when absent, else a positive integer (a RangeError otherwise). */
export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** Turns a csv-parse failure into an error at the record's start line, without repeating field
 * values (a field may be a card token). */
function describeParseError(err: CsvParseError, line: number): CsvFatal {
  const field = typeof err.column === 'number' ? err.column : undefined;
  const at = (message: string): CsvFatal =>
    field === undefined ? { line, message } : { line, message, field };
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

/** A fatal problem as a {@link CsvError}, its field named by the header's `names` when known. */
export function fatalError(fatal: CsvFatal, names?: readonly string[]): CsvError {
  const column = fatal.field === undefined ? undefined : names?.[fatal.field];
  return column === undefined
    ? { line: fatal.line, message: fatal.message }
    : { line: fatal.line, column, message: fatal.message };
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
    // control character where the field does not allow one).
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

/** Limits of {@link readCsvRecords}. */
export interface CsvReaderOptions {
  /** Longest accepted physical line, and longest record (a record spans lines when a quoted field
   * holds a line break), in bytes. Bounds memory on a file with no line breaks or an unclosed
   * quote. Default {@link DEFAULT_MAX_LINE_BYTES}. */
  maxLineBytes?: number;
}

/**
 * Reads a CSV file as it streams, yielding its non-blank records in batches, in file order, each
 * with the line it starts on. The return value is the problem that ended the file early, if any;
 * the records before it have all been yielded. Stop early with `return()`: it closes the parser
 * and the input. Input I/O errors are thrown, not reported.
 */
export async function* readCsvRecords(
  input: CsvInput,
  options: CsvReaderOptions = {},
): AsyncGenerator<CsvRecord[], CsvFatal | undefined, undefined> {
  const maxLineBytes = positiveInteger(
    'maxLineBytes',
    options.maxLineBytes,
    DEFAULT_MAX_LINE_BYTES,
  );
  const guard = new InputGuard(maxLineBytes);
  const batches = recordBatches(guard.blocks(input), maxLineBytes);
  let nextLine = 1;
  try {
    for (;;) {
      const step = await batches.next();
      if (step.done === true) {
        // When the guard cut the input short, the parser's complaint (a quote left open at the
        // cut) is a consequence; the guard's error is the cause.
        if (step.value !== undefined && guard.fatal === undefined) {
          return describeParseError(step.value, nextLine);
        }
        return guard.fatal;
      }
      const records: CsvRecord[] = [];
      for (const fields of step.value) {
        const line = nextLine;
        nextLine = line + 1 + lineFeedsIn(fields);
        if (!isBlank(fields)) records.push({ line, fields });
      }
      if (records.length > 0) yield records;
    }
  } finally {
    await batches.return(undefined);
  }
}

/** The field-count problem of a record read under a header of `names`, if any: then its fields
 * cannot be matched to columns, and the record is not parsed further. */
export function fieldCountIssue(
  fields: readonly string[],
  names: readonly string[],
): RowIssue | undefined {
  if (fields.length === names.length) return undefined;
  const missing = fields.length < names.length ? names[fields.length] : undefined;
  return {
    ...(missing !== undefined ? { column: missing } : {}),
    message:
      `row has ${fields.length} fields but the header has ${names.length}` +
      (fields.length > names.length ? ' (an unquoted comma in a value?)' : ''),
  };
}

/** Indexes of the fields longer than `maxFieldBytes` (UTF-8), each reported into `issues` under
 * its column; undefined when there are none. Pass them to the record parser as `skip`. */
export function oversizedFields(
  fields: readonly string[],
  names: readonly string[],
  maxFieldBytes: number,
  issues: RowIssue[],
): Set<number> | undefined {
  let oversized: Set<number> | undefined;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i] ?? '';
    // A UTF-16 code unit is at most 3 UTF-8 bytes: most fields skip the exact count.
    if (field.length * 3 > maxFieldBytes && Buffer.byteLength(field) > maxFieldBytes) {
      (oversized ??= new Set()).add(i);
      issues.push({
        column: names[i] ?? `#${i + 1}`,
        message: `field is longer than ${maxFieldBytes} bytes`,
      });
    }
  }
  return oversized;
}

/** A row problem at its line, in the shape of a {@link CsvError}. */
export function issueAt(line: number, issue: RowIssue): CsvError {
  return issue.column === undefined
    ? { line, message: issue.message }
    : { line, column: issue.column, message: issue.message };
}

/** The end-of-file problem of a file with no header (`the file is empty`). */
export const EMPTY_FILE: Readonly<CsvError> = {
  line: 1,
  message: 'the file is empty: expected a header row',
};
