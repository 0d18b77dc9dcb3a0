/**
 * The results file of a batch (docs/product.md §6.3, docs/batches.md "Results"): one row per
 * input row, in input order — the batch's intents, a page at a time, merged with the rows refused
 * (by validation when it was submitted with skip-invalid, or for a reference another batch holds)
 * — written by results-csv.ts. Unlike the
 * status, it reads every intent, once, because it lists every row.
 */
import { PassThrough, type Writable } from 'node:stream';
import { z } from 'zod';
import { intentStateSchema } from '../kernel/intent.ts';
import type { AmountMinor, Currency } from '../kernel/money.ts';
import type { IntentStore } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { BatchRecord, BatchStore, InvalidRow } from './ports.ts';
import { resultsCsvColumns, resultValues, writeResultsCsv, type ResultRow } from './results-csv.ts';

/** The ports the results file is read through. */
export interface BatchResultsDeps {
  batches: BatchStore;
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

/** Reads a batch's refused rows in line order, a page at a time. */
class InvalidCursor {
  private page: InvalidRow[] = [];
  private at = 0;
  private offset = 0;
  private exhausted: boolean;

  constructor(
    private readonly batches: BatchStore,
    private readonly id: string,
    enabled: boolean,
  ) {
    this.exhausted = !enabled;
  }

  async peek(): Promise<InvalidRow | undefined> {
    if (this.at < this.page.length) return this.page[this.at];
    if (this.exhausted) return undefined;
    this.offset += this.page.length;
    this.page = await this.batches.invalidRows(this.id, this.offset, PAGE);
    this.at = 0;
    if (this.page.length < PAGE) this.exhausted = true;
    return this.page[0];
  }

  take(): void {
    this.at++;
  }
}

function invalidResult(row: InvalidRow): ResultRow {
  return { line: row.line, status: 'invalid', reason: row.message, meta: {} };
}

/** Rows of a batch in line order: its intents merged with its refused rows. */
async function* resultRows(deps: BatchResultsDeps, batch: BatchRecord): AsyncGenerator<ResultRow> {
  const { batches } = deps;
  const keyPrefix = `bat_${batch.id}_`;
  // Refused rows: with skip-invalid, and rows refused for a reference another batch holds.
  const invalid = new InvalidCursor(batches, batch.id, batch.skipInvalid || batch.invalid > 0);

  for (let offset = 0; ; offset += PAGE) {
    const keys = await deps.store.batchKeys(batch.id, offset, PAGE);
    if (keys.length === 0) break;
    const replies = await batches.intentFields(keys, RESULT_FIELDS);
    const rows: ResultRow[] = [];
    const selfRefCandidates: number[] = [];
    for (const f of replies) {
      const [key, line, state, amount, currency, gwRef, fee, reason, message, updatedAt, meta] = f;
      if (key === null || key === undefined || line === null || line === undefined) {
        deps.logger.warn({ batchId: batch.id }, 'batch index lists an intent that is gone');
        continue;
      }
      const suffix = key.startsWith(keyPrefix) ? key.slice(keyPrefix.length) : '';
      const lineNo = Number(line);
      if (suffix === line) selfRefCandidates.push(lineNo);
      const why = [reason, message].filter((s): s is string => s !== null && s !== undefined);
      rows.push({
        line: lineNo,
        // A suffix equal to the line is a row without a reference, unless marked (below).
        ...(suffix !== line ? { reference: suffix } : {}),
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
    if (selfRefCandidates.length > 0) {
      const marked = await batches.referencedLines(batch.id, selfRefCandidates);
      const referenced = new Set(selfRefCandidates.filter((_, i) => marked[i] === true));
      for (const row of rows) {
        if (row.reference === undefined && referenced.has(row.line)) {
          row.reference = String(row.line);
        }
      }
    }
    for (const row of rows) {
      for (let inv = await invalid.peek(); inv && inv.line < row.line; inv = await invalid.peek()) {
        invalid.take();
        yield invalidResult(inv);
      }
      yield row;
    }
    if (keys.length < PAGE) break;
  }
  for (let inv = await invalid.peek(); inv; inv = await invalid.peek()) {
    invalid.take();
    yield invalidResult(inv);
  }
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
