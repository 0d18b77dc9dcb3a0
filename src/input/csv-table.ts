/**
 * A CSV file read as a table: the header row resolved to a layout, then each row with the problems
 * every CSV input has (a field count that does not match the header, a field over the size
 * limit) already found, and at the end what stopped the file or made it empty. The batch
 * validator and the subscription import both read their files through it, and add only their own
 * rules (duplicate references or ids, error budgets, totals).
 */
import {
  DEFAULT_MAX_FIELD_BYTES,
  EMPTY_FILE,
  fatalError,
  fieldCountIssue,
  issueAt,
  oversizedFields,
  positiveInteger,
  readCsvRecords,
  type CsvError,
  type CsvInput,
  type CsvReaderOptions,
} from './csv-reader.ts';
import type { RowIssue } from './record.ts';

/** A row under the header: its fields, and the problems found before any field rule ran. */
export interface CsvTableRow<L> {
  /** The header's layout the fields are read under. */
  layout: L;
  line: number;
  fields: string[];
  /**
   * Field-count or size problems. With a field-count problem the fields cannot be matched to
   * columns: the row is not to be parsed further.
   */
  issues: RowIssue[];
  /** The field count does not match the header. */
  misaligned: boolean;
  /** Indexes of oversized fields (reported in `issues`): the record parser skips them. */
  oversized: ReadonlySet<number> | undefined;
}

/** How the file ended. */
export interface CsvTableEnd<L> {
  /** The header's layout; undefined when the file had no header or the header was refused. */
  layout: L | undefined;
  headerLine: number;
  /** Header problems, each at its line; the rows were not read. */
  headerErrors: CsvError[];
  /**
   * What ended the file: a broken quote or encoding (at its line), or an empty file. Undefined
   * when the file was read to its end.
   */
  fatal: CsvError | undefined;
  /** The record that broke the file was a row under the header (count it as an invalid row). */
  fatalInRow: boolean;
}

export interface CsvTableOptions<L extends { names: readonly string[] }> extends CsvReaderOptions {
  /** Longest accepted field, in bytes. Default {@link DEFAULT_MAX_FIELD_BYTES}. */
  maxFieldBytes?: number;
  /** Resolves the header row to a layout, or lists its problems. */
  resolveHeader: (fields: readonly string[]) => { layout: L } | { issues: RowIssue[] };
}

/**
 * Yields every row under the header, in file order. Stop early with `return()`: it closes the
 * parser and the input.
 */
export async function* readCsvTable<L extends { names: readonly string[] }>(
  input: CsvInput,
  options: CsvTableOptions<L>,
): AsyncGenerator<CsvTableRow<L>, CsvTableEnd<L>, undefined> {
  const maxFieldBytes = positiveInteger(
    'maxFieldBytes',
    options.maxFieldBytes,
    DEFAULT_MAX_FIELD_BYTES,
  );
  const records = readCsvRecords(input, { maxLineBytes: options.maxLineBytes });
  let layout: L | undefined;
  let headerLine = 1;
  let sawRecord = false;
  try {
    for (;;) {
      const step = await records.next();
      if (step.done === true) {
        const broke = step.value;
        const fatal =
          broke !== undefined
            ? fatalError(broke, layout?.names)
            : sawRecord
              ? undefined
              : { ...EMPTY_FILE };
        return {
          layout,
          headerLine,
          headerErrors: [],
          fatal,
          fatalInRow: broke !== undefined && layout !== undefined && broke.line > headerLine,
        };
      }
      for (const { line, fields } of step.value) {
        sawRecord = true;
        if (layout === undefined) {
          const header = options.resolveHeader(fields);
          if ('issues' in header) {
            return {
              layout: undefined,
              headerLine: line,
              headerErrors: header.issues.map((i) => issueAt(line, i)),
              fatal: undefined,
              fatalInRow: false,
            };
          }
          layout = header.layout;
          headerLine = line;
          continue;
        }
        const countIssue = fieldCountIssue(fields, layout.names);
        if (countIssue !== undefined) {
          yield {
            layout,
            line,
            fields,
            issues: [countIssue],
            misaligned: true,
            oversized: undefined,
          };
          continue;
        }
        const issues: RowIssue[] = [];
        const oversized = oversizedFields(fields, layout.names, maxFieldBytes, issues);
        yield { layout, line, fields, issues, misaligned: false, oversized };
      }
    }
  } finally {
    // Reached early when the consumer stops iterating: closes the parser and the input.
    await records.return(undefined);
  }
}
