/**
 * `billing batch submit|status|results|cancel|approve|retry-failed` (docs/product.md §3,
 * docs/batches.md). About 500 lines: the batch commands share their output helpers (status lines,
 * submission summaries) here, one file per command group as in the rest of cli/commands/. Submitting
 * validates the whole file in this process and enqueues its rows; the worker role executes and
 * counts them, so `--wait` needs a worker running somewhere on the same Redis.
 *
 * `--wait` draws progress (src/cli/progress.ts) and, once the batch completed, exits 3 when rows
 * ended failed, reversed or needs_review (`--no-fail-on-failed-rows`: 0). Ctrl-C stops the wait,
 * not the batch: it says so and exits 130. `results -o` opens the file before writing, so a bad
 * path is one line naming it (exit 2), never a stream error.
 */
import { createReadStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  batchIdSchema,
  formatBatchErrors,
  submitBatch,
  type BatchDeps,
  type SubmitBatchResult,
} from '../../batches/ingest.ts';
import { TRACKED_STATES } from '../../batches/ports.ts';
import { batchResultObjects, batchResults } from '../../batches/results.ts';
import { batchStatus, toBatchStatus, type BatchStatus } from '../../batches/status.ts';
import { cliIdentity } from '../../batches/approval.ts';
import { approveBatch, cancelBatch, retryFailedBatch } from '../../batches/operations.ts';
import type { App } from '../../app/composition.ts';
import type { InstructionType } from '../../kernel/intent.ts';
import { withApp, type CliContext } from '../context.ts';
import { jsonText } from '../output.ts';
import { registerBatchListCommands } from './batch-list.ts';
import {
  CliError,
  describeFsError,
  EXIT_INTERRUPTED,
  EXIT_ROWS_FAILED,
  UsageError,
} from '../errors.ts';
import { plainProgressLine, ProgressBar } from '../progress.ts';

/** How often `--wait` reads the batch's counters. */
const WAIT_POLL_MS = 500;
/** Without a terminal, a progress line at most this often (and one at the end). */
const PLAIN_PROGRESS_EVERY_MS = 5_000;

function parseBatchId(value: string): string {
  const parsed = batchIdSchema.safeParse(value);
  if (!parsed.success) {
    throw new InvalidArgumentError(parsed.error.issues[0]?.message ?? 'invalid batch id');
  }
  return parsed.data;
}

function statusLines(s: BatchStatus): string[] {
  const counts = [...TRACKED_STATES, 'in_progress' as const]
    .map((k) => `${k.replace('_', ' ')} ${s.counts[k]}`)
    .join(' · ');
  const money = Object.entries(s.totals).map(([currency, t]) => {
    const parts = TRACKED_STATES.filter((st) => t.byState[st].amountMinor > 0).map(
      (st) => `${st.replace('_', ' ')} ${t.byState[st].amount}`,
    );
    return `  ${currency}  ${t.rows} rows, ${t.amount} submitted${parts.length > 0 ? ` · ${parts.join(' · ')}` : ''}`;
  });
  const times = [
    `created ${s.createdAt}`,
    ...(s.ingestedAt ? [`enqueued ${s.ingestedAt}`] : []),
    ...(s.finishedAt ? [`finished ${s.finishedAt}`] : []),
  ].join(' · ');
  const ops = [
    ...(s.submittedBy ? [`submitted by ${s.submittedBy}`] : []),
    ...(s.approvedBy ? [`approved by ${s.approvedBy}`] : []),
    ...(s.canceledAt
      ? [`canceled by ${s.canceledBy ?? '?'} (${s.canceledRows ?? 0} rows) ${s.canceledAt}`]
      : []),
    ...(s.retryOf ? [`retries ${s.retryOf}`] : []),
    ...(s.retriedBy ? [`retried by ${s.retriedBy}`] : []),
  ];
  return [
    `batch ${s.id} (${s.type}${s.source ? `, ${s.source}` : ''}): ${s.state}`,
    ...(ops.length > 0 ? [`  ${ops.join(' · ')}`] : []),
    `  rows ${s.rows} (${s.valid} valid, ${s.invalid} invalid) · ${s.final}/${s.valid} final`,
    `  ${counts}`,
    ...money,
    `  ${times}`,
  ];
}

function submitSummary(r: SubmitBatchResult): string {
  const skipped = r.totals.invalid > 0 ? `, ${r.totals.invalid} invalid rows skipped` : '';
  switch (r.status) {
    case 'created':
      return `batch ${r.batchId} created: ${r.totals.valid} rows queued${skipped}`;
    case 'resumed':
      return `batch ${r.batchId} resumed (an earlier submission was interrupted): ${r.totals.valid} rows queued${skipped}`;
    case 'existing':
      return `batch ${r.batchId} already exists (${r.batch?.state ?? 'unknown state'}); nothing new was enqueued`;
    case 'validated':
      return `valid: ${r.totals.valid} rows${skipped}; batch id ${r.batchId}; nothing was enqueued (--validate-only)`;
    default:
      return `${r.status}: ${r.message ?? ''}`;
  }
}

/** The machine-readable form of a submission. */
function submitJson(r: SubmitBatchResult) {
  return {
    status: r.status,
    batchId: r.batchId,
    rows: r.totals.rows,
    valid: r.totals.valid,
    invalid: r.totals.invalid,
    errors: r.errors,
    errorCount: r.errorCount,
    ...(r.batch ? { state: r.batch.state } : {}),
    ...(r.message ? { message: r.message } : {}),
  };
}

/**
 * Rows of a completed batch that did not succeed: failed, reversed, or left for review. Any of
 * them makes `batch submit --wait` exit 3 (exported for its unit test).
 */
export function rowsNotSucceeded(s: Pick<BatchStatus, 'counts'>): number {
  return s.counts.failed + s.counts.reversed + s.counts.needs_review;
}

type WaitOutcome = { status: BatchStatus } | { interrupted: true; last?: BatchStatus };

/**
 * Shows progress until the batch completes: a redrawn line on a terminal (stdout, or stderr with
 * --json), plain lines now and then otherwise. SIGINT/SIGTERM ends the wait, not the batch.
 */
async function waitWithProgress(ctx: CliContext, app: App, id: string): Promise<WaitOutcome> {
  const out = ctx.out();
  const stream = out.progress;
  const bar = stream.isTTY === true ? new ProgressBar(stream) : undefined;
  // With --json and no terminal, stderr gets no progress lines (only what went wrong).
  const plain = !bar && !out.json;
  const stop = new AbortController();
  void ctx.untilSignal().then(() => stop.abort());
  let last: BatchStatus | undefined;
  let lastAt = 0;
  let lastFinal = -1;
  try {
    for (;;) {
      const s = await batchStatus(app, id);
      if (!s) throw new CliError(`batch ${id} is gone`, { code: 'not_found' });
      last = s;
      bar?.update(s);
      const now = Date.now();
      if (
        plain &&
        ((now - lastAt >= PLAIN_PROGRESS_EVERY_MS && s.final !== lastFinal) ||
          s.state === 'completed')
      ) {
        lastAt = now;
        lastFinal = s.final;
        out.info(plainProgressLine(s));
      }
      if (s.state === 'completed') return { status: s };
      await delay(WAIT_POLL_MS, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) return { interrupted: true, ...(last ? { last } : {}) };
    }
  } finally {
    bar?.stop();
  }
}

/** The payout example shipped with the project (`examples/payouts.csv`). */
const SAMPLE_BATCH = new URL('../../../examples/payouts.csv', import.meta.url);

/**
 * Demo seeder (`DemoSeeder` of `billing demo`): submits the example payout file as a batch under
 * a fixed id, so running the demo twice shows the second submission as a no-op.
 */
export async function seedSampleBatch(app: BatchDeps): Promise<string> {
  const r = await submitBatch(app, {
    input: createReadStream(SAMPLE_BATCH),
    type: 'payout',
    id: 'demo-payouts',
    sourceName: 'payouts.csv',
  });
  if (r.status !== 'created' && r.status !== 'existing' && r.status !== 'resumed') {
    throw new Error(`sample batch refused: ${r.message ?? r.status}`);
  }
  return `batch ${r.batchId} (${r.totals.valid} payouts from examples/payouts.csv, ${r.status})`;
}

/** Registers `billing batch …`. */
export function registerBatchCommands(program: Command, ctx: CliContext): void {
  const batch = program
    .command('batch')
    .alias('batches')
    .description('submit, list, inspect and export CSV batches');
  registerBatchListCommands(batch, ctx);

  batch
    .command('submit <file>')
    .description('validate a CSV file of charges or payouts and enqueue its rows')
    .addOption(
      new Option('--type <type>', 'what the rows are')
        .choices(['charge', 'payout'])
        .makeOptionMandatory(),
    )
    .option(
      '--id <id>',
      'batch id (default: derived from the rows, however the file is saved)',
      parseBatchId,
    )
    .option('--validate-only', 'validate and print the batch id; enqueue nothing')
    .option('--skip-invalid', 'enqueue the valid rows and report the invalid ones')
    .option(
      '--allow-reused-references',
      'pay rows whose reference another batch of the type already used (refused by default)',
    )
    .option('--wait', 'show progress until every row is final')
    .option(
      '--no-fail-on-failed-rows',
      `with --wait, exit 0 even when rows failed (default: exit ${EXIT_ROWS_FAILED})`,
    )
    .action(
      async (
        file: string,
        opts: {
          type: InstructionType;
          id?: string;
          validateOnly?: boolean;
          skipInvalid?: boolean;
          allowReusedReferences?: boolean;
          wait?: boolean;
          failOnFailedRows: boolean;
        },
      ) => {
        const info = await stat(file).catch(() => undefined);
        if (!info?.isFile()) {
          throw new UsageError(`${file}: no such file`, { code: 'file_not_found' });
        }
        await withApp(ctx, async (app) => {
          const out = ctx.out();
          const result = await submitBatch(app, {
            input: createReadStream(file),
            type: opts.type,
            ...(opts.id !== undefined ? { id: opts.id } : {}),
            validateOnly: opts.validateOnly === true,
            skipInvalid: opts.skipInvalid === true,
            allowReusedReferences: opts.allowReusedReferences === true,
            sourceName: file.split(/[\\/]/).pop() ?? file,
            submittedBy: cliIdentity(),
          });
          if (result.status === 'invalid') {
            for (const line of formatBatchErrors(file, result.errors)) out.error(line);
            throw new UsageError(
              `${file}: ${result.errorCount} error${result.errorCount === 1 ? '' : 's'}; ${result.message ?? 'nothing was enqueued'}`,
              { code: 'invalid_input', details: submitJson(result) },
            );
          }
          if (result.status === 'conflict') {
            throw new UsageError(`${file}: ${result.message ?? 'batch id conflict'}`, {
              code: 'conflict',
              details: submitJson(result),
            });
          }
          if (!out.json) {
            out.info(submitSummary(result));
            // With skip-invalid, the rows it skipped; without, rows that lost a reference to a
            // batch submitted at the same moment (recorded as refused, never paid).
            if (opts.skipInvalid || result.errorCount > 0) {
              for (const line of formatBatchErrors(file, result.errors)) out.info(`  ${line}`);
            }
          }
          if (result.batch?.state === 'awaiting_approval' && !out.json) {
            out.info(
              `batch ${result.batchId} awaits approval (BATCH_APPROVAL): nothing is enqueued until another person runs: billing batch approve ${result.batchId}`,
            );
          }
          if (
            !opts.wait ||
            result.status === 'validated' ||
            result.batchId === undefined ||
            result.batch?.state === 'awaiting_approval'
          ) {
            if (out.json) out.result(submitJson(result));
            return;
          }
          const id = result.batchId;
          const waited = await waitWithProgress(ctx, app, id);
          if ('interrupted' in waited) {
            throw new CliError(
              `stopped waiting: batch ${id} keeps running in the workers; follow it with: billing batch status ${id}`,
              {
                code: 'interrupted',
                exitCode: EXIT_INTERRUPTED,
                details: { ...submitJson(result), ...(waited.last ? { batch: waited.last } : {}) },
              },
            );
          }
          const final = waited.status;
          out.result({ ...submitJson(result), batch: final }, () => statusLines(final));
          const bad = rowsNotSucceeded(final);
          if (bad > 0 && opts.failOnFailedRows) {
            const parts = (['failed', 'reversed', 'needs_review'] as const)
              .filter((k) => final.counts[k] > 0)
              .map((k) => `${final.counts[k]} ${k.replace('_', ' ')}`);
            throw new CliError(
              `${bad} of ${final.valid} rows did not succeed (${parts.join(', ')}); ` +
                `\`billing batch results ${id}\` lists them (exit ${EXIT_ROWS_FAILED}; --no-fail-on-failed-rows exits 0)`,
              { code: 'rows_failed', exitCode: EXIT_ROWS_FAILED },
            );
          }
        });
      },
    );

  batch
    .command('status <batchId>')
    .description('counts by state, money totals, started and finished times')
    .action(async (id: string) => {
      await withApp(ctx, async (app) => {
        const status = await batchStatus(app, id);
        if (!status) throw new UsageError(`no batch "${id}"`, { code: 'not_found' });
        ctx.out().result(status, (v) => statusLines(v as BatchStatus));
      });
    });

  batch
    .command('cancel <batchId>')
    .description(
      'fail the rows not yet submitted (reason canceled); rows in flight or final finish normally',
    )
    .action(async (id: string) => {
      await withApp(ctx, async (app) => {
        const r = await cancelBatch(app, id, cliIdentity());
        if (r.status === 'not_found') {
          throw new UsageError(`no batch "${id}"`, { code: 'not_found' });
        }
        if (r.status === 'ingesting') {
          throw new CliError(
            `batch ${id} is still being enqueued; cancel it once its rows are enqueued`,
            { code: 'batch_ingesting' },
          );
        }
        if (r.status === 'completed') {
          throw new CliError(
            `batch ${id} has completed: every row is final, nothing was canceled`,
            {
              code: 'batch_completed',
            },
          );
        }
        const status = toBatchStatus(r.batch);
        ctx
          .out()
          .result(
            { batchId: id, status: 'canceled', canceledNow: r.canceledNow, batch: status },
            () =>
              `batch ${id} canceled: ${r.canceledNow} queued rows failed now (${status.canceledRows ?? 0} in all); rows in flight finish normally`,
          );
      });
    });

  batch
    .command('approve <batchId>')
    .description('approve a batch awaiting approval (BATCH_APPROVAL) and enqueue its rows')
    .action(async (id: string) => {
      await withApp(ctx, async (app) => {
        const me = cliIdentity();
        const r = await approveBatch(app, id, me);
        if ('status' in r) {
          ctx
            .out()
            .result({ batchId: id, status: r.status, batch: toBatchStatus(r.batch) }, () =>
              r.status === 'not_required'
                ? `batch ${id} was not held for approval; nothing to approve (${r.batch.state})`
                : `batch ${id} ${r.status === 'approved' ? 'approved' : 'was already approved'} (${r.batch.state})`,
            );
          return;
        }
        switch (r.why) {
          case 'missing':
            throw new UsageError(`no batch "${id}"`, { code: 'not_found' });
          case 'same_approver':
            throw new CliError(
              `batch ${id} was submitted by ${me}; another person must approve it`,
              { code: 'same_approver' },
            );
          case 'canceled':
            throw new CliError(`batch ${id} is canceled`, { code: 'batch_canceled' });
          case 'not_awaiting_approval':
            throw new CliError(`batch ${id} is ${r.state ?? 'not awaiting approval'}`, {
              code: 'not_awaiting_approval',
            });
        }
      });
    });

  batch
    .command('retry-failed <batchId>')
    .description(
      'resubmit the rows that failed as a new batch <id>-r<n> (new references); idempotent',
    )
    .action(async (id: string) => {
      await withApp(ctx, async (app) => {
        const r = await retryFailedBatch(app, id, cliIdentity(), {
          approval: app.config.batchApproval,
        });
        const out = ctx.out();
        switch (r.status) {
          case 'not_found':
            throw new UsageError(`no batch "${id}"`, { code: 'not_found' });
          case 'in_progress':
            throw new CliError(
              `batch ${id} has ${r.inProgress} rows not final yet; retry its failed rows once every row is final`,
              { code: 'batch_in_progress' },
            );
          case 'conflict':
            throw new CliError(`batch id ${r.batchId} is already used by another batch`, {
              code: 'conflict',
            });
          case 'nothing_to_retry':
            out.result(
              { batchId: id, status: r.status, rows: 0 },
              () => `batch ${id} has no failed rows to retry`,
            );
            return;
          default:
            out.result(
              {
                batchId: r.batch.id,
                retryOf: id,
                status: r.status,
                rows: r.rows,
                state: r.batch.state,
              },
              () =>
                `batch ${r.batch.id} ${r.status === 'existing' ? 'already retries' : 'retries'} the ${r.rows} failed rows of ${id} (${r.batch.state})`,
            );
        }
      });
    });

  batch
    .command('results <batchId>')
    .description(
      'per-row results as CSV (stdout, or -o file); with --json a JSON array of the rows (keys: the CSV header)',
    )
    .option('-o, --output <file>', 'write the CSV to this file instead of stdout')
    .action(async (id: string, opts: { output?: string }) => {
      await withApp(ctx, async (app) => {
        if (!(await batchStatus(app, id))) {
          throw new UsageError(`no batch "${id}"`, { code: 'not_found' });
        }
        const out = ctx.out();
        if (opts.output !== undefined) {
          const file = opts.output;
          await writeResultsFile(app, id, file);
          out.result(
            { batchId: id, output: file },
            () => `results of batch ${id} written to ${file}`,
          );
          return;
        }
        await streamResults(app, id, out.takeStdout(), out.json);
      });
    });
}

/**
 * Writes the results CSV to `file`. A path that cannot be opened is bad input (exit 2, naming the
 * file); a write that fails midway is a runtime failure (exit 1) and removes the partial file.
 */
async function writeResultsFile(app: App, id: string, file: string): Promise<void> {
  let handle;
  try {
    handle = await open(file, 'w');
  } catch (err) {
    throw new UsageError(`${file}: cannot write the results file (${describeFsError(err)})`, {
      code: 'output_file',
      details: { file },
    });
  }
  const stream = handle.createWriteStream();
  let fileError: unknown;
  stream.once('error', (err) => (fileError = err));
  try {
    await batchResults(app, id, stream);
  } catch (err) {
    if (!stream.destroyed) stream.destroy();
    await rm(file, { force: true }).catch(() => undefined);
    if (fileError === undefined) throw err;
    throw new CliError(`${file}: writing the results failed (${describeFsError(fileError)})`, {
      code: 'output_file',
      details: { file },
      cause: fileError,
    });
  }
}

/** The results on stdout: the CSV, or with --json one JSON array of row objects, streamed. */
async function streamResults(
  app: App,
  id: string,
  stdout: NodeJS.WritableStream,
  json: boolean,
): Promise<void> {
  // stdout is not ended by the results writer: the CLI may print after it.
  const csv = new PassThrough();
  if (!json) {
    csv.pipe(stdout, { end: false });
    const drained = finished(csv);
    await batchResults(app, id, csv);
    await drained;
    return;
  }
  // The rows as stored, not the CSV parsed back: the CSV's formula escape (a `'` before a cell
  // starting with `=`, `+`, `-`, `@`) protects spreadsheets and is not part of the values.
  const rows = await batchResultObjects(app, id);
  let first = true;
  async function* chunks(): AsyncGenerator<string> {
    for await (const row of rows ?? []) {
      yield `${first ? '[' : ',\n'}${jsonText(row)}`;
      first = false;
    }
    yield first ? '[]\n' : ']\n';
  }
  await pipeline(Readable.from(chunks()), stdout, { end: false });
}
