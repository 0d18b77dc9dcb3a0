/**
 * Submitting a batch file (PRODUCT.md 6, issue 7): validate the whole file, then claim the batch id
 * and turn every valid row into an intent `bat_<batchId>_<reference|line>` with its submit job.
 *
 * Memory stays flat however long the file is: the validator streams, and valid rows are spilled to
 * a private temp file (card tokens already sealed) instead of being held, then read back in chunks
 * that become intents and `addBulk` jobs. The file's bytes are hashed while they are validated, so
 * the derived batch id costs no second read.
 *
 * Idempotency: the batch id is claimed atomically, so the same file submitted twice — one after
 * the other or at the same moment — is one batch. The claimer holds a lease on the ingest; another
 * submitter waits for it to finish, or takes it over when the lease runs out (the claimer died).
 * Redoing an ingest is safe: intents are created only if absent, and a job id is derived from the
 * intent's reference, so a re-added job collapses into the existing one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Redis } from 'ioredis';
import { batchIntentKey, BATCH_ID_MAX, idComponentSchema } from '../kernel/ids.ts';
import type { Clock } from '../kernel/clock.ts';
import type { IntentType } from '../kernel/intent.ts';
import type { AmountMinor, Currency } from '../kernel/money.ts';
import type { IntentDraft, Payee } from '../kernel/payment.ts';
import type { BatchRow } from '../input/instructions.ts';
import { draftFromRow } from '../payments/create.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { BatchIntentRow, IntentStore } from '../kernel/ports.ts';
import type { Sealer } from '../kernel/ports.ts';
import {
  RedisBatchStore,
  type BatchRecord,
  type CurrencyTotal,
  type InvalidRow,
} from './store/batch-store.ts';
import {
  formatCsvError,
  validateCsvStream,
  type CsvError,
  type CsvInput,
  type CsvTotals,
} from './validate-csv.ts';

/** A batch id: `--id`, or the first 16 hex characters of the file's sha256. */
export const batchIdSchema = idComponentSchema('batch id', BATCH_ID_MAX);

/** Length of a derived batch id: 64 bits of the content hash. */
export const DERIVED_ID_LENGTH = 16;

/** What batch features need from the application (the composition root's `App` fits). */
export interface BatchDeps {
  config: { redis: { prefix: string } };
  redis: Redis;
  store: IntentStore;
  dispatcher: Dispatcher;
  sealer: Sealer;
  clock: Clock;
  logger: Logger;
}

/** One submission. */
export interface SubmitBatchOptions {
  /** The file's bytes: a file stream, an HTTP body, a string. */
  input: CsvInput;
  type: IntentType;
  /** Batch id; derived from the content hash when absent. */
  id?: string;
  /** Validate (and derive the id) without creating anything. */
  validateOnly?: boolean;
  /** Enqueue the valid rows and record the invalid ones, instead of refusing the file. */
  skipInvalid?: boolean;
  /** The file's name, kept on the batch for people (`payroll-march.csv`). */
  sourceName?: string;
}

/** Knobs with production defaults; tests shorten the lease and inject a crash. */
export interface IngestTuning {
  /** Rows per intent/`addBulk` chunk. Default 1000. */
  chunkSize?: number;
  /** How long an ingest claim holds without renewal. Default 30 000. */
  leaseMs?: number;
  /** How often a waiting submitter looks at a running ingest. Default 200. */
  pollMs?: number;
  /** Where the spill file goes. Default the OS temp dir. */
  tmpDir?: string;
  /** Errors returned in the result (all are counted). Default 1000. */
  maxListedErrors?: number;
  /** Called after each chunk is enqueued; a throw stops the ingest as a crash would. */
  afterChunk?: (chunk: number) => void | Promise<void>;
}

/**
 * `created`: this call made the batch. `existing`: the id was taken by the same file (no-op).
 * `resumed`: an interrupted ingest of the same file was finished by this call. `validated`:
 * `validateOnly`, nothing stored. `invalid`: refused, nothing enqueued. `conflict`: the id belongs
 * to a different file or type.
 */
export type SubmitStatus =
  'created' | 'existing' | 'resumed' | 'validated' | 'invalid' | 'conflict';

/** What {@link submitBatch} reports. */
export interface SubmitBatchResult {
  status: SubmitStatus;
  /** Undefined only when the file was refused before it was read to the end (id not derivable). */
  batchId: string | undefined;
  /** Row counts of this upload. */
  totals: CsvTotals;
  /** Valid rows and money per currency of this upload. */
  amounts: Record<string, CurrencyTotal>;
  /** The first errors, in line order (at most `maxListedErrors`, then one summary line). */
  errors: CsvError[];
  /** Every error found. */
  errorCount: number;
  /** The stored batch (`created`, `existing`, `resumed`, `conflict`). */
  batch?: BatchRecord;
  /** Why, for `conflict` and `invalid`. */
  message?: string;
}

/**
 * The spill file: one line per row, tab-separated, so reading it back costs a split rather than a
 * JSON parse. A valid row: `R line reference amount currency payee-json meta-json` (reference and
 * meta empty when absent); a refused row (only with skipInvalid): `E line message-json`. No field
 * holds a tab or a line break: references are `[A-Za-z0-9_-]`, and JSON escapes both.
 */
function spillRow(row: BatchRow, payee: Payee): string {
  const meta = Object.keys(row.meta).length > 0 ? JSON.stringify(row.meta) : '';
  return `R\t${row.line}\t${row.reference ?? ''}\t${row.amount}\t${row.currency}\t${JSON.stringify(payee)}\t${meta}`;
}

function spillError(line: number, message: string): string {
  return `E\t${line}\t${JSON.stringify(message)}`;
}

const PLACEHOLDER_KEY = 'bat_pending' as IntentDraft['key'];
const SPILL_BUFFER_LINES = 512;
/** Chunks whose intents and jobs are being written at once. */
const CHUNKS_IN_FLIGHT = 3;

/** Feeds the validator while hashing every byte; `consumed` tells whether it read to the end. */
class HashingInput {
  private readonly hash = createHash('sha256');
  consumed = false;

  constructor(private readonly input: CsvInput) {}

  async *chunks(): AsyncGenerator<Buffer, void, undefined> {
    const source =
      typeof this.input === 'string' || this.input instanceof Uint8Array
        ? [this.input]
        : (this.input as AsyncIterable<Buffer | Uint8Array | string>);
    for await (const chunk of source) {
      const bytes =
        typeof chunk === 'string'
          ? Buffer.from(chunk, 'utf8')
          : Buffer.isBuffer(chunk)
            ? chunk
            : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      this.hash.update(bytes);
      yield bytes;
    }
    this.consumed = true;
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Appends lines to the spill file with backpressure, a few hundred lines per write. */
class SpillWriter {
  private readonly out: WriteStream;
  private buffer: string[] = [];
  private failed: Error | undefined;

  constructor(path: string) {
    // 0600: the file holds payees (sealed card tokens, account numbers) until it is removed.
    this.out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    this.out.on('error', (err) => {
      this.failed = err;
    });
  }

  async write(line: string): Promise<void> {
    this.buffer.push(line);
    if (this.buffer.length >= SPILL_BUFFER_LINES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.buffer.length === 0) return;
    const text = `${this.buffer.join('\n')}\n`;
    this.buffer = [];
    if (!this.out.write(text)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          this.out.off('error', onError);
          resolve();
        };
        const onError = (err: Error) => {
          this.out.off('drain', onDrain);
          reject(err);
        };
        this.out.once('drain', onDrain);
        this.out.once('error', onError);
      });
    }
  }

  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve, reject) => {
      this.out.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  destroy(): void {
    this.out.destroy();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Accumulates the messages of one invalid row (errors of a row arrive together, in order). */
function describeRowErrors(errors: readonly CsvError[]): string {
  return errors
    .map((e) => (e.column === undefined ? e.message : `${e.column}: ${e.message}`))
    .join('; ');
}

interface Validated {
  totals: CsvTotals;
  metaKeys: string[];
  amounts: Record<string, CurrencyTotal>;
  errors: CsvError[];
  errorCount: number;
  /** The file was read to its end (a structural error stops reading). */
  complete: boolean;
  contentHash: string | undefined;
}

/** Validates the whole input, spilling valid rows (and, with skipInvalid, invalid ones). */
async function validateAndSpill(
  opts: SubmitBatchOptions,
  sealer: Sealer,
  spill: SpillWriter | undefined,
  maxListed: number,
): Promise<Validated> {
  const hashing = new HashingInput(opts.input);
  const stream = validateCsvStream(hashing.chunks(), {
    type: opts.type,
    // Every error is taken here: listed up to maxListed, all of them recorded with skipInvalid.
    maxErrors: Number.MAX_SAFE_INTEGER,
  });
  const amounts: Record<string, CurrencyTotal> = {};
  const errors: CsvError[] = [];
  let errorCount = 0;
  let firstUnlistedLine = 0;
  let spilling = spill !== undefined;
  let pendingLine = 0;
  let pending: CsvError[] = [];

  const flushPending = async () => {
    if (pending.length > 0 && spilling && spill) {
      await spill.write(spillError(pendingLine, describeRowErrors(pending)));
    }
    pending = [];
  };

  let summary: { totals: CsvTotals; metaKeys: string[] };
  for (;;) {
    const step = await stream.next();
    if (step.done === true) {
      summary = step.value;
      break;
    }
    const item = step.value;
    if (item.error !== undefined) {
      const error = item.error;
      errorCount++;
      if (errors.length < maxListed) errors.push(error);
      else if (firstUnlistedLine === 0) firstUnlistedLine = error.line;
      if (!opts.skipInvalid) {
        // The file will be refused: nothing more is worth spilling.
        spilling = false;
        continue;
      }
      if (error.line !== pendingLine) {
        await flushPending();
        pendingLine = error.line;
      }
      pending.push(error);
      continue;
    }
    const row: BatchRow = item.row;
    await flushPending();
    const total = (amounts[row.currency] ??= { rows: 0, amount: 0 as AmountMinor });
    total.rows++;
    total.amount = (total.amount + row.amount) as AmountMinor;
    if (!spilling || !spill) continue;
    const draft = draftFromRow(row, { key: PLACEHOLDER_KEY, origin: 'batch' }, sealer);
    await spill.write(spillRow(row, draft.payee));
  }
  await flushPending();
  if (errorCount > errors.length) {
    errors.push({
      line: firstUnlistedLine,
      message: `${errorCount - errors.length} more errors from this line on are not listed (limit ${maxListed})`,
    });
  }
  return {
    totals: summary.totals,
    metaKeys: summary.metaKeys,
    amounts,
    errors,
    errorCount,
    complete: hashing.consumed,
    contentHash: hashing.consumed ? hashing.digest() : undefined,
  };
}

interface IngestContext {
  deps: BatchDeps;
  type: IntentType;
  batches: RedisBatchStore;
  batchId: string;
  owner: string;
  spillPath: string;
  chunkSize: number;
  leaseMs: number;
  afterChunk: IngestTuning['afterChunk'];
}

/**
 * Turns the spilled rows into intents and jobs, chunk by chunk, renewing the lease as it goes.
 * Returns false when another submitter took the ingest over (this one stops; the other finishes).
 */
async function ingestRows(ctx: IngestContext): Promise<boolean> {
  const { deps, batches, batchId, owner } = ctx;
  const lines = createInterface({
    input: createReadStream(ctx.spillPath, { encoding: 'utf8' }),
    crlfDelay: Infinity,
  });
  let rows: BatchIntentRow[] = [];
  let invalid: InvalidRow[] = [];
  let refLines: number[] = [];
  let chunk = 0;
  let lastRenew = deps.clock.now();

  /** Creates one chunk's intents, then adds the jobs of those still waiting to be submitted. */
  const runChunk = async (
    chunkRows: BatchIntentRow[],
    chunkInvalid: InvalidRow[],
    chunkRefLines: number[],
  ): Promise<void> => {
    const intents = await deps.store.createBatchRows({
      batchId,
      type: ctx.type,
      rows: chunkRows,
      now: deps.clock.now(),
    });
    // Only intents still waiting for their first submission need a job; a resumed ingest finds
    // the rest already on their way or done.
    const waiting = intents.filter((intent) => intent.state === 'queued');
    await Promise.all([
      deps.dispatcher.submitMany(waiting),
      batches.addInvalid(batchId, chunkInvalid),
      batches.markReferencedLines(batchId, chunkRefLines),
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
    const running = runChunk(rows, invalid, refLines);
    // Handled when it is awaited in order; this only keeps an early failure from being reported
    // as unhandled while an older chunk is awaited.
    running.catch(() => undefined);
    inflight.push(running);
    rows = [];
    invalid = [];
    refLines = [];
  };

  try {
    for await (const text of lines) {
      if (text === '') continue;
      const f = text.split('\t');
      const line = Number(f[1]);
      if (f[0] === 'E') {
        invalid.push({ line, message: JSON.parse(f[2] ?? '""') as string });
      } else {
        const ref = f[2] === '' || f[2] === undefined ? undefined : f[2];
        if (ref !== undefined && ref === f[1]) refLines.push(line);
        rows.push({
          key: batchIntentKey(batchId, ref ?? line),
          line,
          amount: Number(f[3]) as AmountMinor,
          currency: f[4] as Currency,
          payee: f[5] ?? '',
          meta: f[6] ?? '',
        });
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

/**
 * Validates a batch file and, when it is acceptable, makes it a batch: see the module docs.
 * Input I/O errors and Redis errors are thrown; everything about the file is in the result.
 */
export async function submitBatch(
  deps: BatchDeps,
  opts: SubmitBatchOptions,
  tuning: IngestTuning = {},
): Promise<SubmitBatchResult> {
  if (opts.id !== undefined) batchIdSchema.parse(opts.id);
  const chunkSize = tuning.chunkSize ?? 1000;
  const leaseMs = tuning.leaseMs ?? 30_000;
  const pollMs = tuning.pollMs ?? 200;
  const maxListed = tuning.maxListedErrors ?? 1000;
  const batches = new RedisBatchStore(deps.redis, deps.config.redis.prefix);
  const log = deps.logger.child({ component: 'batch' });

  const dir = opts.validateOnly
    ? undefined
    : await mkdtemp(join(tuning.tmpDir ?? tmpdir(), 'billing-batch-'));
  const spillPath = dir === undefined ? undefined : join(dir, 'rows.ndjson');
  const spill = spillPath === undefined ? undefined : new SpillWriter(spillPath);
  try {
    const started = deps.clock.now();
    const v = await validateAndSpill(opts, deps.sealer, spill, maxListed);
    await spill?.close();
    const structural = !v.complete || v.totals.rows === 0;
    const batchId = opts.id ?? v.contentHash?.slice(0, DERIVED_ID_LENGTH);
    const base = {
      batchId,
      totals: v.totals,
      amounts: v.amounts,
      errors: v.errors,
      errorCount: v.errorCount,
    };
    log.info(
      {
        batchId,
        type: opts.type,
        source: opts.sourceName,
        rows: v.totals.rows,
        valid: v.totals.valid,
        invalid: v.totals.invalid,
        errors: v.errorCount,
        ms: deps.clock.now() - started,
      },
      'batch file validated',
    );

    if (v.errorCount > 0 && (!opts.skipInvalid || structural || v.totals.valid === 0)) {
      const why = !opts.skipInvalid
        ? 'the file has errors; nothing was enqueued'
        : structural
          ? 'the file cannot be read past a structural error, so --skip-invalid cannot apply; nothing was enqueued'
          : 'no row is valid; nothing was enqueued';
      return { status: 'invalid', ...base, message: why };
    }
    if (batchId === undefined || v.contentHash === undefined) {
      // Unreachable: a file without errors was read to the end.
      throw new Error('batch file was not read to the end');
    }
    if (opts.validateOnly) return { status: 'validated', ...base, batchId };
    if (spillPath === undefined) throw new Error('spill file missing');

    const owner = randomBytes(8).toString('hex');
    const init = {
      id: batchId,
      type: opts.type,
      source: opts.sourceName ?? '',
      contentHash: v.contentHash,
      rows: v.totals.rows,
      valid: v.totals.valid,
      invalid: v.totals.invalid,
      skipInvalid: opts.skipInvalid === true,
      metaKeys: v.metaKeys,
      totals: v.amounts,
    };
    const blog = log.child({ batchId });
    const ingest = async (status: 'created' | 'resumed'): Promise<SubmitBatchResult | 'lost'> => {
      const t0 = deps.clock.now();
      const kept = await ingestRows({
        deps,
        type: opts.type,
        batches,
        batchId,
        owner,
        spillPath,
        chunkSize,
        leaseMs,
        afterChunk: tuning.afterChunk,
      });
      if (!kept) {
        blog.warn('batch ingest was taken over by another submitter; leaving it to them');
        return 'lost';
      }
      const state = await batches.finishIngest(batchId, deps.clock.now());
      blog.info(
        { status, state, rows: v.totals.valid, ms: deps.clock.now() - t0 },
        'batch rows enqueued',
      );
      const batch = await batches.get(batchId);
      return { status, ...base, batchId, ...(batch ? { batch } : {}) };
    };

    const claim = await batches.claim(init, owner, deps.clock.now(), leaseMs);
    if (claim.created) {
      blog.info({ type: opts.type, rows: v.totals.valid }, 'batch claimed');
      const r = await ingest('created');
      if (r !== 'lost') return r;
    }

    // The id is taken: the same file (a no-op), a running or interrupted ingest of it, or a
    // different file under the same --id.
    for (;;) {
      const batch = await batches.get(batchId);
      if (!batch) throw new Error(`batch ${batchId} disappeared while submitting`);
      if (batch.contentHash !== v.contentHash || batch.type !== opts.type) {
        blog.warn({ type: opts.type }, 'batch id already used for a different file');
        return {
          status: 'conflict',
          ...base,
          batchId,
          batch,
          message: `batch id ${batchId} is already used by a different ${batch.type} file${batch.source ? ` (${batch.source})` : ''}`,
        };
      }
      if (batch.state !== 'ingesting') {
        blog.info({ state: batch.state }, 'batch already submitted; nothing to do');
        return { status: 'existing', ...base, batchId, batch };
      }
      const now = deps.clock.now();
      if ((batch.leaseUntil ?? 0) < now && (await batches.takeOver(batchId, owner, now, leaseMs))) {
        blog.warn('batch ingest was interrupted; resuming it');
        const r = await ingest('resumed');
        if (r !== 'lost') return r;
      }
      await sleep(pollMs);
    }
  } finally {
    spill?.destroy();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

/** One line per error, as the CLI prints them: `file.csv: line 7, amount: …`. */
export function formatBatchErrors(source: string, errors: readonly CsvError[]): string[] {
  return errors.map((e) => `${source}: ${formatCsvError(e)}`);
}
