/**
 * Submitting a batch file (docs/product.md §6, docs/batches.md): validate the whole file,
 * check its row references against the other batches of its type, then claim the batch id and
 * turn every valid row into an intent `bat_<batchId>_<reference|line>` with its submit job.
 *
 * Memory stays flat however long the file is: the validator streams, and valid rows are spilled to
 * a private temp file (card tokens already sealed) instead of being held (ingest-validate.ts,
 * spill-file.ts), then read back in chunks: to look their references up (reused-references.ts),
 * then to become intents and `addBulk` jobs (ingest-rows.ts). The batch id is derived from the
 * file's content (identity.ts), hashed while it is validated, so it costs no second read.
 *
 * Idempotency: the batch id is claimed atomically, so the same content submitted twice — one
 * after the other or at the same moment, saved the same way or not — is one batch. The claimer
 * holds a lease on the ingest; another submitter waits for it to finish, or takes it over when the
 * lease runs out (the claimer died). Redoing an ingest is safe: reference claims are idempotent,
 * intents are created only if absent, and a job id is derived from the intent's reference, so a
 * re-added job collapses into the existing one. Across batches, a reference another batch of the
 * type holds is refused unless reuse is allowed (reused-references.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_ID_MAX, idComponentSchema, isNewBatchId } from '../kernel/ids.ts';
import type { Clock } from '../kernel/clock.ts';
import type { InstructionType } from '../kernel/intent.ts';
import type { AmountMinor } from '../kernel/money.ts';
import type { IntentStore, Sealer } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import { HTTP_SUBMITTER, needsApproval, type BatchApproval } from './approval.ts';
import { derivedBatchId } from './identity.ts';
import { ingestRows } from './ingest-rows.ts';
import { listErrors, validateAndSpill, type ErrorList } from './ingest-validate.ts';
import type { BatchRecord, CurrencyTotal, FullBatchStore } from './ports.ts';
import { findReusedReferences, ReuseRefusals } from './reused-references.ts';
import { SpillWriter } from './spill-file.ts';
import { formatCsvError, type CsvError, type CsvInput, type CsvTotals } from './validate-csv.ts';

export { DERIVED_ID_LENGTH } from './identity.ts';

/**
 * A batch id: `--id`, or the first 16 hex characters of the file's content hash (identity.ts).
 * Any stored batch's id, so that batches stored before `_` was refused stay readable; a new batch's
 * id is {@link newBatchIdSchema}.
 */
export const batchIdSchema = idComponentSchema('batch id', BATCH_ID_MAX);

/**
 * The id a caller gives a new batch (kernel/ids.ts `isNewBatchId`: no `_`, so that no two batches'
 * intent keys can meet). {@link submitBatch} applies it; an edge may refuse such an id up front.
 */
export const newBatchIdSchema = batchIdSchema.refine(isNewBatchId, {
  error: (issue) =>
    `id "${String(issue.input)}" may contain only letters, digits and "-" for a new batch ("_" ends the batch id in its rows' intent keys, bat_<id>_<reference>)`,
});

/** The ports batch features use (the composition root's `App` fits). */
export interface BatchDeps {
  batches: FullBatchStore;
  store: IntentStore;
  dispatcher: Dispatcher;
  sealer: Sealer;
  clock: Clock;
  logger: Logger;
  /**
   * BATCH_APPROVAL, as the composition root's configuration carries it (the app fits): applies to
   * a submission that does not say (`SubmitBatchOptions.approval`).
   */
  config?: { batchApproval?: BatchApproval };
}

/** One submission. */
export interface SubmitBatchOptions {
  /** The file's bytes: a file stream, an HTTP body, a string. */
  input: CsvInput;
  type: InstructionType;
  /** Batch id; derived from the content hash when absent. */
  id?: string;
  /** Validate (and derive the id) without creating anything. */
  validateOnly?: boolean;
  /** Enqueue the valid rows and record the invalid ones, instead of refusing the file. */
  skipInvalid?: boolean;
  /**
   * Accept rows whose reference another batch of the type already used (they are paid again),
   * instead of refusing them. Kept on the batch.
   */
  allowReusedReferences?: boolean;
  /** The file's name, kept on the batch for people (`payroll-march.csv`). */
  sourceName?: string;
  /**
   * Who submits: the HTTP token's name, or `cli:<os user>` (kept on the batch). Default
   * {@link HTTP_SUBMITTER}.
   */
  submittedBy?: string;
  /** BATCH_APPROVAL (approval.ts); default `deps.config.batchApproval`, else none. */
  approval?: BatchApproval;
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
  /** Called after the references were looked up, before the batch id is claimed (tests race two
   * submissions from there). */
  afterCheck?: () => void | Promise<void>;
}

/**
 * `created`: this call made the batch. `existing`: the id was taken by the same content (no-op).
 * `resumed`: an interrupted ingest of the same content was finished by this call. `validated`:
 * `validateOnly`, nothing stored. `invalid`: refused, nothing enqueued. `conflict`: the id belongs
 * to different content or another type (a `validateOnly` dry run says so too).
 */
export type SubmitStatus =
  'created' | 'existing' | 'resumed' | 'validated' | 'invalid' | 'conflict';

/** What {@link submitBatch} reports. */
export interface SubmitBatchResult {
  status: SubmitStatus;
  /** Undefined only when the file was refused before it was read to the end (id not derivable). */
  batchId: string | undefined;
  /** Row counts of this upload (rows refused for a reused reference count as invalid). */
  totals: CsvTotals;
  /** Valid rows and money per currency of this upload. */
  amounts: Record<string, CurrencyTotal>;
  /** The first errors, in line order (at most `maxListedErrors`, then one summary line). */
  errors: CsvError[];
  /** Every error found (rows refused for a reused reference included). */
  errorCount: number;
  /** The stored batch (`created`, `existing`, `resumed`, `conflict`). */
  batch?: BatchRecord;
  /** Why, for `conflict` and `invalid`. */
  message?: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The upload's counts and money once `refused` rows are taken out of the valid ones. */
function withoutRefused(
  totals: CsvTotals,
  amounts: Record<string, CurrencyTotal>,
  refused: ReuseRefusals,
): { totals: CsvTotals; amounts: Record<string, CurrencyTotal> } {
  if (refused.count === 0) return { totals, amounts };
  const left: Record<string, CurrencyTotal> = {};
  for (const [currency, total] of Object.entries(amounts)) {
    const out = refused.amounts[currency];
    const rows = total.rows - (out?.rows ?? 0);
    if (rows > 0)
      left[currency] = { rows, amount: (total.amount - (out?.amount ?? 0)) as AmountMinor };
  }
  return {
    totals: {
      rows: totals.rows,
      valid: totals.valid - refused.count,
      invalid: totals.invalid + refused.count,
    },
    amounts: left,
  };
}

function asErrorList(refused: ReuseRefusals): ErrorList {
  return {
    errors: refused.errors,
    count: refused.count,
    firstUnlistedLine: refused.firstUnlistedLine,
  };
}

/** Whether the batch under a taken id is another file than this one (or of another type). */
function isOtherFile(batch: BatchRecord, contentHash: string, type: InstructionType): boolean {
  return batch.contentHash !== contentHash || batch.type !== type;
}

/** The conflict's message: the id is another file's. */
function idTaken(batch: BatchRecord): string {
  return `batch id ${batch.id} is already used by a different ${batch.type} file${batch.source ? ` (${batch.source})` : ''}`;
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
  if (opts.id !== undefined) {
    batchIdSchema.parse(opts.id);
    // A batch stored before `_` was refused is still itself: the same file again is `existing`, an
    // interrupted ingest resumes, a different file is a conflict. Nothing can create a new one.
    const fresh = newBatchIdSchema.safeParse(opts.id);
    if (!fresh.success && (await deps.batches.get(opts.id)) === undefined) {
      return {
        status: 'invalid',
        batchId: undefined,
        totals: { rows: 0, valid: 0, invalid: 0 },
        amounts: {},
        errors: [],
        errorCount: 1,
        message: `${fresh.error.issues[0]?.message ?? 'invalid id'}; nothing was enqueued`,
      };
    }
  }
  const chunkSize = tuning.chunkSize ?? 1000;
  const leaseMs = tuning.leaseMs ?? 30_000;
  const pollMs = tuning.pollMs ?? 200;
  const maxListed = tuning.maxListedErrors ?? 1000;
  const allowReused = opts.allowReusedReferences === true;
  const { batches } = deps;
  const log = deps.logger.child({ component: 'batch' });

  // validateOnly spills too: the reference check reads the rows back.
  const dir = await mkdtemp(join(tuning.tmpDir ?? tmpdir(), 'billing-batch-'));
  const spillPath = join(dir, 'rows.ndjson');
  const spill = new SpillWriter(spillPath);
  try {
    const started = deps.clock.now();
    const v = await validateAndSpill(opts, deps.sealer, spill, maxListed);
    await spill.close();
    const structural = !v.complete || v.totals.rows === 0;
    const batchId =
      opts.id ?? (v.contentHash === undefined ? undefined : derivedBatchId(v.contentHash));
    const validation: ErrorList = {
      errors: v.errors,
      count: v.errorCount,
      firstUnlistedLine: v.firstUnlistedLine,
    };
    /** What a result says of this upload, once `refused` rows are taken out. */
    const report = (refused: ReuseRefusals) => ({
      batchId,
      ...withoutRefused(v.totals, v.amounts, refused),
      errors: listErrors([validation, asErrorList(refused)], maxListed),
      errorCount: v.errorCount + refused.count,
    });
    const none = new ReuseRefusals(opts.type, maxListed);
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

    const tooLarge = v.totalTooLarge.length > 0;
    if (v.errorCount > 0 && (!opts.skipInvalid || structural || tooLarge || v.totals.valid === 0)) {
      const why = !opts.skipInvalid
        ? 'the file has errors; nothing was enqueued'
        : structural
          ? 'the file cannot be read past a structural error, so --skip-invalid cannot apply; nothing was enqueued'
          : tooLarge
            ? `the ${v.totalTooLarge.join(', ')} total of the file is more than one batch can hold, so --skip-invalid cannot apply; split the file; nothing was enqueued`
            : 'no row is valid; nothing was enqueued';
      return { status: 'invalid', ...report(none), message: why };
    }
    if (batchId === undefined || v.contentHash === undefined) {
      // Unreachable: a file without errors was read to the end.
      throw new Error('batch file was not read to the end');
    }

    // References other batches of the type hold, looked up before anything is stored so that a
    // refused file changes nothing. A batch that already has this id is this content submitted
    // again (its rows hold their references) or a different file under its --id (a conflict):
    // the claim below tells which.
    const existing = allowReused ? undefined : await batches.get(batchId);
    const reused =
      allowReused || existing !== undefined
        ? none
        : await findReusedReferences({
            batches,
            type: opts.type,
            batchId,
            spillPath,
            chunkSize,
            maxListed,
          });
    const checked = report(reused);
    if (reused.count > 0) {
      log.warn(
        { batchId, type: opts.type, refused: reused.count },
        'batch rows reuse references of other batches',
      );
      if (!opts.skipInvalid || checked.totals.valid === 0) {
        const why = opts.skipInvalid
          ? 'no row is valid; nothing was enqueued'
          : `${
              reused.count === 1
                ? `1 row reuses a reference of another ${opts.type} batch`
                : `${reused.count} rows reuse references of other ${opts.type} batches`
            }; nothing was enqueued (to pay them again anyway, allow reused references: --allow-reused-references, HTTP allowReusedReferences=true)`;
        return { status: 'invalid', ...checked, message: why };
      }
    }
    if (opts.validateOnly) {
      // The upload itself would be refused for a different file under a taken id: say so now.
      const prior = await batches.get(batchId);
      if (prior && isOtherFile(prior, v.contentHash, opts.type)) {
        return { status: 'conflict', ...checked, batchId, batch: prior, message: idTaken(prior) };
      }
      return { status: 'validated', ...checked, batchId };
    }
    await tuning.afterCheck?.();

    const owner = randomBytes(8).toString('hex');
    const init = {
      id: batchId,
      type: opts.type,
      source: opts.sourceName ?? '',
      contentHash: v.contentHash,
      ...(v.layoutHash !== undefined ? { layoutHash: v.layoutHash } : {}),
      rows: v.totals.rows,
      // As validated: the rows refused for their reference are taken out as they are enqueued
      // (BatchStore.claimReferences), once each, whoever ingests.
      valid: v.totals.valid,
      invalid: v.totals.invalid,
      skipInvalid: opts.skipInvalid === true,
      allowReusedReferences: allowReused,
      metaKeys: v.metaKeys,
      totals: v.amounts,
      holdForApproval: needsApproval(
        opts.approval ?? deps.config?.batchApproval ?? 'none',
        opts.type,
      ),
      submittedBy: opts.submittedBy ?? HTTP_SUBMITTER,
    };
    const blog = log.child({ batchId });
    const ingest = async (
      status: 'created' | 'resumed',
      allowStored: boolean,
      hold: boolean,
    ): Promise<SubmitBatchResult | 'lost'> => {
      const t0 = deps.clock.now();
      const refused = new ReuseRefusals(opts.type, maxListed);
      const kept = await ingestRows({
        deps,
        type: opts.type,
        batchId,
        owner,
        spillPath,
        chunkSize,
        leaseMs,
        allowReused: allowStored,
        hold,
        refusals: refused,
        afterChunk: tuning.afterChunk,
      });
      if (!kept) {
        blog.warn('batch ingest was taken over by another submitter; leaving it to them');
        return 'lost';
      }
      const state = await batches.finishIngest(batchId, deps.clock.now());
      const done = report(refused);
      blog.info(
        {
          status,
          state,
          rows: done.totals.valid,
          refusedReused: refused.count,
          allowedReused: refused.allowed,
          ms: deps.clock.now() - t0,
        },
        'batch rows enqueued',
      );
      const batch = await batches.get(batchId);
      return { status, ...done, batchId, ...(batch ? { batch } : {}) };
    };

    const claim = await batches.claim(init, owner, deps.clock.now(), leaseMs);
    if (claim.created) {
      blog.info({ type: opts.type, rows: v.totals.valid }, 'batch claimed');
      const r = await ingest('created', allowReused, init.holdForApproval);
      if (r !== 'lost') return r;
    }

    // The id is taken: the same content (a no-op), a running or interrupted ingest of it, or a
    // different file under the same --id.
    const base = report(none);
    for (;;) {
      const batch = await batches.get(batchId);
      if (!batch) throw new Error(`batch ${batchId} disappeared while submitting`);
      if (isOtherFile(batch, v.contentHash, opts.type)) {
        blog.warn({ type: opts.type }, 'batch id already used for a different file');
        return { status: 'conflict', ...base, batchId, batch, message: idTaken(batch) };
      }
      if (batch.state !== 'ingesting') {
        blog.info({ state: batch.state }, 'batch already submitted; nothing to do');
        return { status: 'existing', ...base, batchId, batch };
      }
      if (batch.layoutHash !== undefined && batch.layoutHash !== v.layoutHash) {
        // Rows without a reference are keyed by their line: resuming from other lines would give
        // the rows not yet enqueued keys the enqueued ones may hold, or may not (a second charge).
        blog.warn('batch ingest is unfinished and this copy has its rows on other lines; refused');
        return {
          status: 'conflict',
          ...base,
          batchId,
          batch,
          message: `batch ${batchId} is still being ingested from a copy of this file whose rows are on other lines (blank lines differ); rows without a reference are keyed by their line, so only the file as first uploaded can resume it`,
        };
      }
      const now = deps.clock.now();
      if ((batch.leaseUntil ?? 0) < now && (await batches.takeOver(batchId, owner, now, leaseMs))) {
        blog.warn('batch ingest was interrupted; resuming it');
        // The batch's own choice, not this submitter's: a resumed ingest decides as the first.
        const r = await ingest('resumed', batch.allowReusedReferences, batch.holdForApproval);
        if (r !== 'lost') return r;
      }
      await sleep(pollMs);
    }
  } finally {
    spill.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

/** One line per error, as the CLI prints them: `file.csv: line 7, amount: …`. */
export function formatBatchErrors(source: string, errors: readonly CsvError[]): string[] {
  return errors.map((e) => `${source}: ${formatCsvError(e)}`);
}
