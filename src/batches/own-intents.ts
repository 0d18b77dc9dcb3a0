/**
 * The one place a batch's rows become intents: an ingest (ingest-rows.ts), the release of a held
 * batch on approval or cancel, and a retry of failed rows (operations.ts). The intent store creates
 * a key only if it is absent and reports one it finds as it is (a resumed ingest finds its own).
 *
 * A key found that belongs to **another** batch is not this row's intent: two batches whose id and
 * row reference run together into one key (`bat_pay_2024_1` is batch `pay` with reference `2024_1`
 * and batch `pay_2024` with reference `1`). New batch ids cannot hold `_` (kernel/ids.ts
 * `isNewBatchId`), so only a batch stored before that rule can hold such a key; this is the defence
 * in depth. Such a row is refused, loudly: recorded as an invalid row naming the batch and line
 * that hold the key, taken out of the batch's valid rows, expected rows and money
 * (`BatchOperationsStore.refuseRows`, once per line), never enqueued, logged as an error. The other
 * batch's intent is left alone. So the batch still completes once its other rows are final, and
 * its results file shows the row as `invalid` with the reason (docs/batches.md "Identity and
 * idempotency").
 */
import type { Clock } from '../kernel/clock.ts';
import type { IntentType } from '../kernel/intent.ts';
import type { BatchIntent, BatchIntentRow, IntentStore } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { FullBatchStore, RefusedRow } from './ports.ts';

/** The ports {@link createOwnIntents} writes through. */
export interface OwnIntentsDeps {
  store: Pick<IntentStore, 'createBatchRows'>;
  batches: Pick<FullBatchStore, 'intentFields' | 'refuseRows'>;
  clock: Clock;
  logger: Logger;
}

/** The invalid-row message of a row whose intent key another batch holds. */
export function foreignKeyMessage(key: string, holderBatch: string, holderLine: string): string {
  return `intent key ${key} is already used by batch ${holderBatch} line ${holderLine}; this row was not enqueued`;
}

/** What {@link createOwnIntents} made of a chunk. */
export interface OwnIntents {
  /** The chunk's intents that are this batch's (created now, or found from an earlier run). */
  intents: BatchIntent[];
  /** The rows refused because another batch holds their key, with their messages. */
  refused: RefusedRow[];
}

/**
 * Creates (or finds) the intents of a chunk of batch `batchId`'s rows, and refuses the rows whose
 * key another batch holds (see the module docs). Costs one more round trip only when the chunk
 * found keys that existed (a resumed ingest, a repeated release).
 */
export async function createOwnIntents(
  deps: OwnIntentsDeps,
  chunk: { batchId: string; type: IntentType; rows: readonly BatchIntentRow[] },
): Promise<OwnIntents> {
  const { batchId, type, rows } = chunk;
  const intents = await deps.store.createBatchRows({ batchId, type, rows, now: deps.clock.now() });
  const found = intents.filter((intent) => !intent.created);
  if (found.length === 0) return { intents, refused: [] };

  const owners = await deps.batches.intentFields(
    found.map((intent) => intent.key),
    ['batchId', 'line'],
  );
  const foreign = new Set<string>();
  const refused: RefusedRow[] = [];
  const byKey = new Map(rows.map((row) => [row.key as string, row]));
  found.forEach((intent, i) => {
    const [owner, line] = owners[i] ?? [];
    if (owner === batchId) return;
    const row = byKey.get(intent.key);
    if (row === undefined) return;
    foreign.add(intent.key);
    // The key's suffix is the row's reference, or its line when it has none.
    const suffix = intent.key.slice(`bat_${batchId}_`.length);
    refused.push({
      line: row.line,
      amount: row.amount,
      currency: row.currency,
      message: foreignKeyMessage(intent.key, owner ?? '?', line ?? '?'),
      ...(suffix !== String(row.line) ? { reference: suffix } : {}),
      ...(row.meta !== '' ? { meta: JSON.parse(row.meta) as Record<string, string> } : {}),
    });
  });
  if (refused.length === 0) return { intents, refused };

  await deps.batches.refuseRows(batchId, refused);
  deps.logger.error(
    {
      component: 'batch',
      batchId,
      refused: refused.length,
      first: refused.slice(0, 5).map((r) => ({ line: r.line, message: r.message })),
    },
    'batch rows refused: their intent key belongs to another batch (never enqueued)',
  );
  return { intents: intents.filter((intent) => !foreign.has(intent.key)), refused };
}
