/**
 * Row references across batches (docs/batches.md "References across batches"). A reference is
 * unique in a file by validation; across the batches of one type it is made unique by a registry
 * in the batch store (reference → the batch and line that claimed it). A row whose reference
 * another batch already holds is refused, naming that batch and line, unless reuse is allowed
 * explicitly: a payout saved in two files, or in two versions of one file, is never paid twice by
 * accident.
 *
 * Two steps, because a refused file must change nothing and two files submitted at the same moment
 * must not both pay one reference:
 *
 * - {@link findReusedReferences}, before the batch is created: a read of the registry for every
 *   row of the spill file, so that a file reusing references is refused as a whole (or, with
 *   skip-invalid, without those rows) while nothing is stored yet;
 * - the claim itself, atomic per chunk as the rows are enqueued (`BatchStore.claimReferences`,
 *   ingest-rows.ts), which is what makes it hold under concurrency: of two batches that both
 *   passed the read, the one that claims a reference first pays it, and the other's row is
 *   recorded as refused (an invalid row naming the first batch), never paid.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { InstructionType } from '../kernel/intent.ts';
import type { AmountMinor } from '../kernel/money.ts';
import { shown } from '../input/fields.ts';
import type { CsvError } from '../input/csv-reader.ts';
import type { BatchStore, CurrencyTotal, ReferenceClaim, ReferenceHolder } from './ports.ts';
import { readSpillLine } from './spill-file.ts';

/** `reference "pay-0007" is already used by payout batch 3f2a0c1d2e4b5a69 line 12`. */
export function reusedReferenceMessage(
  type: InstructionType,
  reference: string,
  holderBatch: string,
  holderLine: number | string,
): string {
  return `reference "${shown(reference)}" is already used by ${type} batch ${holderBatch} line ${holderLine}`;
}

/** The invalid-row message of a refused row as `BatchStore.claimReferences` records it. */
export function reusedReferenceTemplate(type: InstructionType): string {
  return `reference: ${reusedReferenceMessage(type, '{reference}', '{batch}', '{line}')}`;
}

/** Rows refused while they were enqueued — a reference another batch holds, or an intent key
 * another batch's row holds (own-intents.ts) —: counted, the first ones listed, money kept. (And a
 * count of the rows reuse was allowed for.) */
export class ReuseRefusals {
  count = 0;
  /** The first `maxListed`, in the order added (file order). */
  readonly errors: CsvError[] = [];
  /** Line of the first refusal not listed; 0 when all are. */
  firstUnlistedLine = 0;
  /** Rows and money of the refused rows, per currency. */
  readonly amounts: Record<string, CurrencyTotal> = {};
  /** Rows accepted although another batch holds their reference (reuse allowed). */
  allowed = 0;

  constructor(
    private readonly type: InstructionType,
    private readonly maxListed: number,
  ) {}

  /** A row refused because another batch of the type holds its reference. */
  add(row: ReferenceClaim, holder: ReferenceHolder): void {
    this.addRow(row, {
      line: row.line,
      column: 'reference',
      message: reusedReferenceMessage(this.type, row.reference, holder.batchId, holder.line),
    });
  }

  /** A row refused for `error`: counted, listed while there is room, its money kept. */
  addRow(row: Pick<ReferenceClaim, 'line' | 'amount' | 'currency'>, error: CsvError): void {
    this.count++;
    const total = (this.amounts[row.currency] ??= { rows: 0, amount: 0 as AmountMinor });
    total.rows++;
    total.amount = (total.amount + row.amount) as AmountMinor;
    if (this.errors.length < this.maxListed) {
      this.errors.push(error);
    } else if (this.firstUnlistedLine === 0) {
      this.firstUnlistedLine = row.line;
    }
  }
}

/** What {@link findReusedReferences} reads. */
export interface FindReusedInput {
  batches: Pick<BatchStore, 'referenceHolders'>;
  type: InstructionType;
  /** The batch the file would become: references it already holds are its own, not reused. */
  batchId: string;
  /** The spill file of the validated rows (spill-file.ts). */
  spillPath: string;
  /** References looked up per registry read. */
  chunkSize: number;
  maxListed: number;
}

/**
 * Reads the registry for every row with a reference in the spill file, a chunk at a time, and
 * returns the rows whose reference another batch of the type holds. Stores nothing.
 */
export async function findReusedReferences(input: FindReusedInput): Promise<ReuseRefusals> {
  const refusals = new ReuseRefusals(input.type, input.maxListed);
  const lines = createInterface({
    input: createReadStream(input.spillPath, { encoding: 'utf8' }),
    crlfDelay: Infinity,
  });
  let chunk: ReferenceClaim[] = [];
  const check = async () => {
    const holders = await input.batches.referenceHolders(
      input.type,
      chunk.map((r) => r.reference),
    );
    chunk.forEach((row, i) => {
      const holder = holders[i];
      if (holder !== undefined && holder.batchId !== input.batchId) refusals.add(row, holder);
    });
    chunk = [];
  };
  try {
    for await (const text of lines) {
      if (text === '') continue;
      const spilled = readSpillLine(text, input.batchId);
      if (spilled.kind !== 'row' || spilled.reference === undefined) continue;
      const { line, amount, currency } = spilled.row;
      chunk.push({ reference: spilled.reference, line, amount, currency });
      if (chunk.length >= input.chunkSize) await check();
    }
    if (chunk.length > 0) await check();
    return refusals;
  } finally {
    lines.close();
  }
}
