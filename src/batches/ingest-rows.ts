/**
 * The second pass of a batch submission (see ingest.ts): reads the spill file back in chunks that
 * become intents (`IntentStore.createBatchRows`) and `addBulk` submit jobs, a few chunks in flight
 * at once, renewing the ingest lease as it goes. Each chunk first claims its rows' references
 * (`BatchStore.claimReferences`, reused-references.ts): a row whose reference another batch holds
 * is recorded as refused and not enqueued, unless reuse is allowed; so is a row whose intent key
 * another batch's row already holds (own-intents.ts). Redoing it is safe: claims are idempotent,
 * intents are created only if absent, and a job id is derived from the intent's reference.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Clock } from '../kernel/clock.ts';
import type { InstructionType } from '../kernel/intent.ts';
import type { BatchIntentRow, IntentStore } from '../kernel/ports.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { createOwnIntents, type OwnIntentsDeps } from './own-intents.ts';
import type { FullBatchStore, InvalidRow, ReferenceClaim } from './ports.ts';
import { reusedReferenceTemplate, type ReuseRefusals } from './reused-references.ts';
import { readSpillLine } from './spill-file.ts';

/** Chunks whose intents and jobs are being written at once. */
const CHUNKS_IN_FLIGHT = 3;

/** The ports the second pass writes through. */
export interface IngestRowsDeps extends OwnIntentsDeps {
  batches: FullBatchStore;
  store: IntentStore;
  dispatcher: Dispatcher;
  clock: Clock;
}

/** One ingest of one batch by one owner. */
export interface IngestContext {
  deps: IngestRowsDeps;
  type: InstructionType;
  batchId: string;
  owner: string;
  spillPath: string;
  chunkSize: number;
  leaseMs: number;
  /** Rows may reuse references other batches hold (the batch's stored choice). */
  allowReused: boolean;
  /** Collects the rows refused because another batch holds their reference or intent key. */
  refusals: ReuseRefusals;
  /**
   * The batch waits for approval (BATCH_APPROVAL): its accepted rows are recorded
   * (`BatchStore.holdRows`), not made intents nor enqueued; approval releases them (operations.ts).
   */
  hold: boolean;
  /** Called after each chunk is enqueued; a throw stops the ingest as a crash would. */
  afterChunk: ((chunk: number) => void | Promise<void>) | undefined;
}

/**
 * Turns the spilled rows into intents and jobs, chunk by chunk, renewing the lease as it goes.
 * Returns false when another submitter took the ingest over (this one stops; the other finishes).
 */
export async function ingestRows(ctx: IngestContext): Promise<boolean> {
  const { deps, batchId, owner } = ctx;
  const { batches } = deps;
  const lines = createInterface({
    input: createReadStream(ctx.spillPath, { encoding: 'utf8' }),
    crlfDelay: Infinity,
  });
  let rows: BatchIntentRow[] = [];
  let invalid: InvalidRow[] = [];
  let refLines: number[] = [];
  let claims: ReferenceClaim[] = [];
  let chunk = 0;
  let lastRenew = deps.clock.now();
  const messageTemplate = reusedReferenceTemplate(ctx.type);

  /**
   * Claims one chunk's references, creates the intents of the rows not refused, then adds the
   * jobs of those still waiting to be submitted.
   */
  const runChunk = async (
    chunkRows: BatchIntentRow[],
    chunkInvalid: InvalidRow[],
    chunkRefLines: number[],
    chunkClaims: ReferenceClaim[],
  ): Promise<void> => {
    let accepted = chunkRows;
    let ownLines = chunkRefLines;
    if (chunkClaims.length > 0) {
      const claimed = await batches.claimReferences({
        batchId,
        type: ctx.type,
        rows: chunkClaims,
        allowReused: ctx.allowReused,
        messageTemplate,
      });
      if (claimed.refused.length > 0) {
        const out = new Set(claimed.refused.map((r) => r.line));
        accepted = chunkRows.filter((r) => !out.has(r.line));
        ownLines = chunkRefLines.filter((line) => !out.has(line));
        for (const r of claimed.refused) ctx.refusals.add(r, r.holder);
      }
      ctx.refusals.allowed += claimed.reused;
    }
    const enqueue = async () => {
      if (ctx.hold) {
        await batches.holdRows(batchId, accepted);
        return;
      }
      const { intents, refused } = await createOwnIntents(deps, {
        batchId,
        type: ctx.type,
        rows: accepted,
      });
      for (const r of refused) ctx.refusals.addRow(r, { line: r.line, message: r.message });
      // Only intents still waiting for their first submission need a job; a resumed ingest finds
      // the rest already on their way or done.
      await deps.dispatcher.submitMany(intents.filter((intent) => intent.state === 'queued'));
    };
    await Promise.all([
      enqueue(),
      batches.addInvalid(batchId, chunkInvalid),
      batches.markReferencedLines(batchId, ownLines),
    ]);
  };

  // A few chunks are in flight at once, so Redis always has the next chunk's writes queued while
  // Node reads and prepares the one after; awaited oldest first, so progress is reported in order.
  const inflight: Promise<void>[] = [];
  const settleOldest = async (): Promise<boolean> => {
    const oldest = inflight.shift();
    if (oldest === undefined) return true;
    await oldest;
    chunk++;
    await ctx.afterChunk?.(chunk);
    const at = deps.clock.now();
    if (at - lastRenew >= ctx.leaseMs / 3) {
      lastRenew = at;
      if (!(await batches.renew(batchId, owner, at, ctx.leaseMs))) return false;
    }
    return true;
  };
  const startChunk = () => {
    const running = runChunk(rows, invalid, refLines, claims);
    // Handled when it is awaited in order; this only keeps an early failure from being reported
    // as unhandled while an older chunk is awaited.
    running.catch(() => undefined);
    inflight.push(running);
    rows = [];
    invalid = [];
    refLines = [];
    claims = [];
  };

  try {
    for await (const text of lines) {
      if (text === '') continue;
      const spilled = readSpillLine(text, batchId);
      if (spilled.kind === 'invalid') {
        invalid.push(spilled.row);
      } else {
        const { row } = spilled;
        if (spilled.referencesOwnLine) refLines.push(row.line);
        if (spilled.reference !== undefined) {
          claims.push({
            reference: spilled.reference,
            line: row.line,
            amount: row.amount,
            currency: row.currency,
            ...(row.meta !== '' ? { meta: JSON.parse(row.meta) as Record<string, string> } : {}),
          });
        }
        rows.push(row);
      }
      if (rows.length + invalid.length >= ctx.chunkSize) {
        startChunk();
        if (inflight.length >= CHUNKS_IN_FLIGHT && !(await settleOldest())) return false;
      }
    }
    if (rows.length + invalid.length > 0) startChunk();
    while (inflight.length > 0) if (!(await settleOldest())) return false;
    return true;
  } finally {
    await Promise.allSettled(inflight);
    lines.close();
  }
}
