/**
 * The results file of a batch (docs/product.md §6.3): one row per input row, in input order,
 * streamed through csv-stringify so a million-row batch is written without being held in memory.
 *
 * Every cell goes through {@link escapeFormula}: the file is opened in spreadsheets, and values
 * such as `meta_*` cells, names and gateway messages come from outside.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify, type Stringifier } from 'csv-stringify';
import type { IntentState } from '../kernel/intent.ts';
import { formatMajor, type AmountMinor, type Currency } from '../kernel/money.ts';
import { META_PREFIX } from '../input/instructions.ts';

/** Fixed columns, in the order docs/product.md §6.3 lists them; `meta_*` columns follow. */
export const RESULT_COLUMNS = [
  'line',
  'reference',
  'intent_key',
  'status',
  'amount',
  'currency',
  'gateway_reference',
  'fee',
  'reason',
  'updated_at',
] as const;

/**
 * An intent's state, `invalid` for a row refused by validation (with `--skip-invalid`) or for its
 * reference, or `awaiting_approval` for a row of a batch held for approval (BATCH_APPROVAL), which
 * has no intent yet.
 */
export type ResultStatus = IntentState | 'invalid' | 'awaiting_approval';

/** One line of the results file. Amounts are minor units; the file shows major units. */
export interface ResultRow {
  /** The input row's physical line. */
  line: number;
  reference?: string;
  /** Absent for a refused row: it has no intent. A held row shows the key approval gives it. */
  intentKey?: string;
  status: ResultStatus;
  amount?: AmountMinor;
  currency?: Currency;
  gatewayReference?: string;
  fee?: AmountMinor;
  /** Failure reason or validation message. */
  reason?: string;
  updatedAt?: Date | string;
  /** The row's `meta_*` values keyed without the prefix, as the validator produced them. */
  meta: Readonly<Record<string, string>>;
}

export interface ResultsCsvOptions {
  /** Prepend a UTF-8 BOM, so Excel reads non-ASCII names correctly. Default false. */
  bom?: boolean;
}

/** Characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection). */
const FORMULA_START = new Set(['=', '+', '-', '@', '\t', '\r']);

/**
 * Prefixes a cell with `'` when it starts with `=`, `+`, `-`, `@`, tab or CR, so a spreadsheet
 * shows it as text instead of evaluating it.
 */
export function escapeFormula(cell: string): string {
  return cell.length > 0 && FORMULA_START.has(cell.charAt(0)) ? `'${cell}` : cell;
}

/** The header of a results file: the fixed columns, then `meta_<key>` for each key in order. */
export function resultsCsvColumns(metaKeys: readonly string[]): string[] {
  return [...RESULT_COLUMNS, ...metaKeys.map((key) => `${META_PREFIX}${key}`)];
}

function timestamp(value: Date | string | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : value.toISOString();
}

/** The cells of one results line, in {@link resultsCsvColumns} order, formula-escaped. */
export function resultCells(row: ResultRow, metaKeys: readonly string[]): string[] {
  return resultValues(row, metaKeys).map(escapeFormula);
}

/**
 * The values of one results line, in {@link resultsCsvColumns} order, as stored: without the
 * formula escape, which protects spreadsheets and means nothing outside a CSV (the JSON form).
 */
export function resultValues(row: ResultRow, metaKeys: readonly string[]): string[] {
  return [
    String(row.line),
    row.reference ?? '',
    row.intentKey ?? '',
    row.status,
    row.amount === undefined ? '' : formatMajor(row.amount),
    row.currency ?? '',
    row.gatewayReference ?? '',
    row.fee === undefined ? '' : formatMajor(row.fee),
    row.reason ?? '',
    timestamp(row.updatedAt),
    ...metaKeys.map((key) => row.meta[key] ?? ''),
  ];
}

/**
 * A csv-stringify transform that writes the header, then one line per {@link resultCells} array
 * written to it. RFC 4180 output: CRLF line ends; fields with a comma, quote or any line break
 * are quoted.
 */
export function createResultsCsvStringifier(
  metaKeys: readonly string[],
  options: ResultsCsvOptions = {},
): Stringifier {
  return stringify({
    header: true,
    columns: resultsCsvColumns(metaKeys),
    bom: options.bom ?? false,
    record_delimiter: 'windows',
    // Set explicitly: with a custom record_delimiter csv-stringify would otherwise leave a lone
    // LF or CR in a cell unquoted, and the file would gain lines.
    quote_record_delimiter: true,
  });
}

/**
 * Streams `rows` as a results file into `out` and resolves when it is flushed. `metaKeys` are the
 * batch's meta keys in header order (the validator's `metaKeys`).
 */
export async function writeResultsCsv(
  rows: Iterable<ResultRow> | AsyncIterable<ResultRow>,
  out: NodeJS.WritableStream,
  metaKeys: readonly string[],
  options: ResultsCsvOptions = {},
): Promise<void> {
  const keys = [...metaKeys];
  async function* lines(): AsyncGenerator<string[]> {
    for await (const row of rows) yield resultCells(row, keys);
  }
  await pipeline(Readable.from(lines()), createResultsCsvStringifier(keys, options), out);
}
