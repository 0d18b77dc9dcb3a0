/**
 * Batch identity from content, not bytes (docs/batches.md "Identity and idempotency"): the one
 * place that decides which batch a file is. Two files are the same batch when they hold the same
 * rows of the same type, however they were saved: with or without a UTF-8 BOM, CRLF or LF line
 * ends, quoted or unquoted fields, a trailing newline or not, blank lines, columns in any order,
 * header names in any case.
 *
 * The canonical form, hashed with SHA-256, is one JSON line for the type and the header's
 * canonical column names sorted, then one JSON line per data row in file order: its values (the
 * text of each field as the CSV parser returned it, unquoted, nothing trimmed) in the sorted column
 * order. A row whose field count does not match the header (an invalid row kept by
 * `--skip-invalid`) is hashed as its fields in file order, in a shape an aligned row cannot have.
 * JSON escapes every quote and line break, so the form is unambiguous. Line numbers are not part
 * of it: a file that differs only by a blank line is the same batch, not a second payment of its
 * rows.
 *
 * They are hashed on their own, as the file's layout ({@link ContentIdentity.layoutDigest}): a row
 * without a reference is keyed by its line, so an interrupted ingest may only be resumed by a copy
 * whose rows are on the same lines (ingest.ts), or the rows it has not yet enqueued would get keys
 * that the rows it has enqueued already hold, or would not.
 *
 * Any other difference is different content: a value that differs by a character (whitespace the
 * parser keeps included), `1500` against `1500.00`, an extra optional column even when empty.
 */
import { createHash, type Hash } from 'node:crypto';
import type { InstructionType } from '../kernel/intent.ts';

/** Length of a derived batch id: 64 bits of the content hash. */
export const DERIVED_ID_LENGTH = 16;

/** Canonical lines are fed to the hash in blocks of about this many characters. */
const FLUSH_CHARS = 64 * 1024;

/**
 * The content hash of one file, fed as the validator reads it: {@link ContentIdentity.header}
 * once, then {@link ContentIdentity.row} for every data row (valid or not) in file order.
 */
export class ContentIdentity {
  readonly #hash: Hash = createHash('sha256');
  readonly #layout: Hash = createHash('sha256');
  #pending = '';
  #pendingLines = '';
  #order: number[] | undefined;

  constructor(private readonly type: InstructionType) {}

  /** The header's canonical column names (`amount`, `meta_region`), in file order. */
  header(names: readonly string[]): void {
    const order = names.map((_, i) => i);
    // Canonical names are unique in an accepted header; sorted by UTF-16 code units.
    order.sort((a, b) => ((names[a] ?? '') < (names[b] ?? '') ? -1 : 1));
    this.#order = order;
    this.#add(JSON.stringify({ type: this.type, columns: order.map((i) => names[i]) }));
  }

  /** One data row's fields, as the CSV parser returned them, in file order, and its line. */
  row(fields: readonly string[], line: number): void {
    const order = this.#order;
    if (order === undefined) throw new Error('ContentIdentity.row before header');
    this.#pendingLines += `${line}\n`;
    if (fields.length !== order.length) {
      this.#add(JSON.stringify({ fields }));
      return;
    }
    this.#add(JSON.stringify(order.map((i) => fields[i])));
  }

  /** SHA-256 (hex) of the canonical form. Call once, after the last row. */
  digest(): string {
    this.#flush();
    return this.#hash.digest('hex');
  }

  /** SHA-256 (hex) of the data rows' line numbers in file order. Call once, after the last row. */
  layoutDigest(): string {
    this.#flush();
    return this.#layout.digest('hex');
  }

  #add(line: string): void {
    this.#pending += `${line}\n`;
    if (this.#pending.length >= FLUSH_CHARS) this.#flush();
  }

  #flush(): void {
    if (this.#pendingLines !== '') this.#layout.update(this.#pendingLines, 'utf8');
    this.#pendingLines = '';
    if (this.#pending === '') return;
    this.#hash.update(this.#pending, 'utf8');
    this.#pending = '';
  }
}

/** The batch id of a file submitted without `--id`: the first 16 hex digits of its content hash. */
export function derivedBatchId(contentHash: string): string {
  return contentHash.slice(0, DERIVED_ID_LENGTH);
}
