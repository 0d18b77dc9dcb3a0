/**
 * The results file of a batch (docs/product.md §6.3, docs/batches.md "Results"): one row per
 * input row, in input order — the batch's intents, a page at a time, merged with the rows refused
 * (by validation when it was submitted with skip-invalid, or for a reference another batch holds)
 * and, while the batch awaits approval, the rows held for it — written by results-csv.ts. Unlike
 * the status, it reads every intent, once, because it lists every row.
 */
import { PassThrough, type Writable } from 'node:stream';
import { z } from 'zod';
import { intentStateSchema } from '../kernel/intent.ts';
import type { AmountMinor, Currency } from '../kernel/money.ts';
import type { IntentStore } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { BatchOperationsStore, BatchRecord, BatchStore, InvalidRow } from './ports.ts';
import { resultsCsvColumns, resultValues, writeResultsCsv, type ResultRow } from './results-csv.ts';

/** The ports the results file is read through. */
export interface BatchResultsDeps {
  batches: BatchStore & Pick<BatchOperationsStore, 'heldRows'>;
  store: Pick<IntentStore, 'batchKeys'>;
  logger: Logger;
}

/** Intent fields the results file needs, read for a page of rows at once. */
const RESULT_FIELDS = [
  'key',
  'line',
  'state',
  'amount',
  'currency',
  'gatewayReference',
  'fee',
  'reason',
  'message',
  'updatedAt',
  'meta',
] as const;

const PAGE = 1000;

/** Reads rows of a batch kept in line order (refused rows, held rows), a page at a time. */
class PagedRows<T> {
  private page: T[] = [];
  private at = 0;
  private offset = 0;
  private exhausted: boolean;

  constructor(
    private readonly read: (offset: number, limit: number) => Promise<T[]>,
    enabled: boolean,
  ) {
    this.exhausted = !enabled;
  }

  async peek(): Promise<T | undefined> {
    if (this.at < this.page.length) return this.page[this.at];
    if (this.exhausted) return undefined;
    this.offset += this.page.length;
    this.page = await this.read(this.offset, PAGE);
    this.at = 0;
    if (this.page.length < PAGE) this.exhausted = true;
    return this.page[0];
  }

  take(): void {
    this.at++;
  }
}

/**
 * A refused row: its line, reason, and the reference and meta values it kept (none for a row
 * stored before they were kept). Nothing else of the row is stored, so nothing else can show.
 */
function invalidResult(row: InvalidRow): ResultRow {
  return {
    line: row.line,
    ...(row.reference !== undefined ? { reference: row.reference } : {}),
    status: 'invalid',
    reason: row.message,
    meta: row.meta ?? {},
  };
}

/**
 * The reference in intent key `bat_<id>_<suffix>`: none when the suffix is the row's own line (a
 * row without a reference), unless {@link markSelfReferences} finds the line marked.
 */
function referenceOf(keyPrefix: string, key: string, line: number): string | undefined {
  const suffix = key.startsWith(keyPrefix) ? key.slice(keyPrefix.length) : '';
  return suffix === String(line) ? undefined : suffix;
}

/**
 * Gives back the reference of the rows whose reference is their own line number
 * (`BatchStore.markReferencedLines`): their key looks like that of a row without one.
 */
async function markSelfReferences(
  batches: BatchStore,
  batchId: string,
  rows: ResultRow[],
): Promise<void> {
  const candidates = rows
    .filter((r) => r.reference === undefined && r.intentKey === `bat_${batchId}_${r.line}`)
    .map((r) => r.line);
  if (candidates.length === 0) return;
  const marked = await batches.referencedLines(batchId, candidates);
  const referenced = new Set(candidates.filter((_, i) => marked[i] === true));
  for (const row of rows) {
    if (row.reference === undefined && referenced.has(row.line)) row.reference = String(row.line);
  }
}

/**
 * A page of rows held for approval (BATCH_APPROVAL) as results: no intent exists yet; the key is
 * the one the row gets when the batch is approved.
 */
async function heldResults(
  batches: BatchResultsDeps['batches'],
  batchId: string,
  offset: number,
  limit: number,
): Promise<ResultRow[]> {
  const keyPrefix = `bat_${batchId}_`;
  const rows = (await batches.heldRows(batchId, offset, limit)).map((row): ResultRow => {
    const reference = referenceOf(keyPrefix, row.key, row.line);
    return {
      line: row.line,
      ...(reference !== undefined ? { reference } : {}),
      intentKey: row.key,
      status: 'awaiting_approval',
      amount: row.amount,
      currency: row.currency,
      meta: row.meta === '' ? {} : z.record(z.string(), z.string()).parse(JSON.parse(row.meta)),
    };
  });
  await markSelfReferences(batches, batchId, rows);
  return rows;
}

/**
 * The refused and held rows before line `end`, merged in line order. A held row on the line of an
 * intent (`end`) or of a refused row is left out: a release (approval, or a cancel) made it that
 * row, and it is listed as such. So is a second held copy of a line (`last`): an ingest resumed
 * after a crash holds the row again with its card token sealed afresh, and approval makes both
 * copies the same intent. And a second refused row of a line: an ingest that crashed before an
 * upgrade and was resumed after it records the row again in the newer form (with its reference),
 * and the line is listed once (the first stored form).
 */
async function* rowsBefore(
  end: number,
  invalid: PagedRows<InvalidRow>,
  held: PagedRows<ResultRow>,
  last: { heldLine: number; invalidLine: number },
): AsyncGenerator<ResultRow> {
  for (;;) {
    const inv = await invalid.peek();
    if (inv !== undefined && inv.line === last.invalidLine) {
      invalid.take();
      continue;
    }
    const h = await held.peek();
    if (h !== undefined && (h.line === end || h.line === inv?.line || h.line === last.heldLine)) {
      held.take();
      continue;
    }
    const nextInvalid = inv !== undefined && inv.line < end ? inv : undefined;
    const nextHeld = h !== undefined && h.line < end ? h : undefined;
    if (nextInvalid !== undefined && (nextHeld === undefined || nextInvalid.line < nextHeld.line)) {
      invalid.take();
      last.invalidLine = nextInvalid.line;
      yield invalidResult(nextInvalid);
    } else if (nextHeld !== undefined) {
      held.take();
      last.heldLine = nextHeld.line;
      yield nextHeld;
    } else {
      return;
    }
  }
}

/**
 * Rows of a batch in line order: its intents merged with its refused rows and, while it awaits
 * approval, the rows held for it (status `awaiting_approval`).
 */
async function* resultRows(deps: BatchResultsDeps, batch: BatchRecord): AsyncGenerator<ResultRow> {
  const { batches } = deps;
  const keyPrefix = `bat_${batch.id}_`;
  // Refused rows: with skip-invalid, and rows refused for a reference another batch holds.
  const invalid = new PagedRows(
    (offset, limit) => batches.invalidRows(batch.id, offset, limit),
    batch.skipInvalid || batch.invalid > 0,
  );
  // Held rows become intents when the batch is released (approved or canceled), which leaves
  // `awaiting_approval` only once every one of them is an intent.
  const held = new PagedRows(
    (offset, limit) => heldResults(batches, batch.id, offset, limit),
    batch.state === 'awaiting_approval',
  );

  const last = { heldLine: 0, invalidLine: 0 };
  for (let offset = 0; ; offset += PAGE) {
    const keys = await deps.store.batchKeys(batch.id, offset, PAGE);
    if (keys.length === 0) break;
    const replies = await batches.intentFields(keys, RESULT_FIELDS);
    const rows: ResultRow[] = [];
    for (const f of replies) {
      const [key, line, state, amount, currency, gwRef, fee, reason, message, updatedAt, meta] = f;
      if (key === null || key === undefined || line === null || line === undefined) {
        deps.logger.warn({ batchId: batch.id }, 'batch index lists an intent that is gone');
        continue;
      }
      const lineNo = Number(line);
      const reference = referenceOf(keyPrefix, key, lineNo);
      const why = [reason, message].filter((s): s is string => s !== null && s !== undefined);
      rows.push({
        line: lineNo,
        // A row without a reference, unless marked (below).
        ...(reference !== undefined ? { reference } : {}),
        intentKey: key,
        status: intentStateSchema.parse(state),
        amount: Number(amount) as AmountMinor,
        currency: (currency ?? '') as Currency,
        ...(gwRef !== null && gwRef !== undefined ? { gatewayReference: gwRef } : {}),
        ...(fee !== null && fee !== undefined ? { fee: Number(fee) as AmountMinor } : {}),
        ...(why.length > 0 ? { reason: why.join(': ') } : {}),
        ...(updatedAt !== null && updatedAt !== undefined
          ? { updatedAt: new Date(Number(updatedAt)) }
          : {}),
        meta:
          meta === null || meta === undefined
            ? {}
            : z.record(z.string(), z.string()).parse(JSON.parse(meta)),
      });
    }
    await markSelfReferences(batches, batch.id, rows);
    for (const row of rows) {
      yield* rowsBefore(row.line, invalid, held, last);
      yield row;
    }
    if (keys.length < PAGE) break;
  }
  yield* rowsBefore(Infinity, invalid, held, last);
}

/**
 * Streams the results file of docs/product.md §6.3 into `out` (one row per input row, in input
 * order, refused rows included) and ends `out`.
 * Returns false, writing nothing, when there is no such batch.
 */
export async function batchResults(
  deps: BatchResultsDeps,
  id: string,
  out: Writable,
): Promise<boolean> {
  const batch = await deps.batches.get(id);
  if (!batch) return false;
  await writeResultsCsv(resultRows(deps, batch), out, batch.metaKeys);
  return true;
}

/**
 * The results file's rows as objects keyed by its columns, in the same order, with the values as
 * stored (no formula escape): the JSON form (`billing batch results --json`). Undefined when
 * there is no such batch.
 */
export async function batchResultObjects(
  deps: BatchResultsDeps,
  id: string,
): Promise<AsyncGenerator<Record<string, string>> | undefined> {
  const batch = await deps.batches.get(id);
  if (!batch) return undefined;
  const columns = resultsCsvColumns(batch.metaKeys);
  return (async function* () {
    for await (const row of resultRows(deps, batch)) {
      const values = resultValues(row, batch.metaKeys);
      yield Object.fromEntries(columns.map((column, i) => [column, values[i] ?? '']));
    }
  })();
}

/** A readable results file, for HTTP replies: errors destroy the stream. */
export function batchResultsStream(deps: BatchResultsDeps, id: string): PassThrough {
  const pass = new PassThrough();
  batchResults(deps, id, pass).catch((err: unknown) => {
    pass.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  return pass;
}
