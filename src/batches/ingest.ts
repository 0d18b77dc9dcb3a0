/**
 * Submitting a batch file (docs/product.md §6, docs/batches.md): validate the whole file,
 * then claim the batch id and turn every valid row into an intent `bat_<batchId>_<reference|line>`
 * with its submit job.
 *
 * Memory stays flat however long the file is: the validator streams, and valid rows are spilled to
 * a private temp file (card tokens already sealed) instead of being held (ingest-validate.ts,
 * spill-file.ts), then read back in chunks that become intents and `addBulk` jobs
 * (ingest-rows.ts). The file's bytes are hashed while they are validated, so the derived batch id
 * costs no second read.
 *
 * Idempotency: the batch id is claimed atomically, so the same file submitted twice — one after
 * the other or at the same moment — is one batch. The claimer holds a lease on the ingest; another
 * submitter waits for it to finish, or takes it over when the lease runs out (the claimer died).
 * Redoing an ingest is safe: intents are created only if absent, and a job id is derived from the
 * intent's reference, so a re-added job collapses into the existing one.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_ID_MAX, idComponentSchema } from '../kernel/ids.ts';
import type { Clock } from '../kernel/clock.ts';
import type { IntentType } from '../kernel/intent.ts';
import type { IntentStore, Sealer } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { ingestRows } from './ingest-rows.ts';
import { validateAndSpill } from './ingest-validate.ts';
import type { BatchRecord, BatchStore, CurrencyTotal } from './ports.ts';
import { SpillWriter } from './spill-file.ts';
import { formatCsvError, type CsvError, type CsvInput, type CsvTotals } from './validate-csv.ts';

/** A batch id: `--id`, or the first 16 hex characters of the file's sha256. */
export const batchIdSchema = idComponentSchema('batch id', BATCH_ID_MAX);

/** Length of a derived batch id: 64 bits of the content hash. */
export const DERIVED_ID_LENGTH = 16;

/** The ports batch features use (the composition root's `App` fits). */
export interface BatchDeps {
  batches: BatchStore;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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
  const { batches } = deps;
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
