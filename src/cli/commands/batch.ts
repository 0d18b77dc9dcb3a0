/**
 * `billing batch submit|status|results` (docs/product.md §3, docs/batches.md). Submitting
 * validates the whole file in this process and enqueues its rows; the worker role executes and
 * counts them, so `--wait` needs a worker running somewhere on the same Redis.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import {
  batchIdSchema,
  formatBatchErrors,
  submitBatch,
  type BatchDeps,
  type SubmitBatchResult,
} from '../../batches/ingest.ts';
import { TRACKED_STATES } from '../../batches/ports.ts';
import { batchResults } from '../../batches/results.ts';
import { batchStatus, type BatchStatus } from '../../batches/status.ts';
import { waitForBatch } from '../../batches/wait.ts';
import type { App } from '../../app/composition.ts';
import type { IntentType } from '../../kernel/intent.ts';
import { withApp, type CliContext } from '../context.ts';
import { UsageError } from '../errors.ts';

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

function statusLines(s: BatchStatus): string {
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
  return [
    `batch ${s.id} (${s.type}${s.source ? `, ${s.source}` : ''}): ${s.state}`,
    `  rows ${s.rows} (${s.valid} valid, ${s.invalid} invalid) · ${s.final}/${s.valid} final`,
    `  ${counts}`,
    ...money,
    `  ${times}`,
  ].join('\n');
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

/** Shows progress until the batch completes: a bar on a terminal, periodic lines otherwise. */
async function waitWithProgress(ctx: CliContext, app: App, id: string): Promise<BatchStatus> {
  const out = ctx.out();
  const poll = (batchId: string) => batchStatus(app, batchId);
  if (out.json) return waitForBatch(poll, id, { intervalMs: WAIT_POLL_MS });
  if (ctx.stdout.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: ctx.stdout,
        format: 'batch {id} [{bar}] {percentage}% | {value}/{total} final | ETA {eta_formatted}',
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    try {
      return await waitForBatch(poll, id, {
        intervalMs: WAIT_POLL_MS,
        onProgress: (s) => {
          if (!started) {
            bar.start(s.valid, s.final, { id });
            started = true;
          } else {
            bar.setTotal(s.valid);
            bar.update(s.final);
          }
        },
      });
    } finally {
      bar.stop();
    }
  }
  let lastAt = 0;
  let lastFinal = -1;
  return waitForBatch(poll, id, {
    intervalMs: WAIT_POLL_MS,
    onProgress: (s) => {
      const now = Date.now();
      const due = now - lastAt >= PLAIN_PROGRESS_EVERY_MS && s.final !== lastFinal;
      if (due || s.state === 'completed') {
        lastAt = now;
        lastFinal = s.final;
        out.info(`batch ${s.id}: ${s.final}/${s.valid} final (${s.state})`);
      }
    },
  });
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
  return `batch ${r.batchId} (${r.totals.valid} payouts from examples/payouts.csv, ${r.status}; billing batch status ${r.batchId})`;
}

/** Registers `billing batch …`. */
export function registerBatchCommands(program: Command, ctx: CliContext): void {
  const batch = program.command('batch').description('submit, inspect and export CSV batches');

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
    .action(
      async (
        file: string,
        opts: {
          type: IntentType;
          id?: string;
          validateOnly?: boolean;
          skipInvalid?: boolean;
          allowReusedReferences?: boolean;
          wait?: boolean;
        },
      ) => {
        const info = await stat(file).catch(() => undefined);
        if (!info?.isFile()) throw new UsageError(`${file}: no such file`);
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
          });
          if (result.status === 'invalid') {
            if (out.json) out.result(submitJson(result));
            else for (const line of formatBatchErrors(file, result.errors)) out.error(line);
            throw new UsageError(
              `${file}: ${result.errorCount} error${result.errorCount === 1 ? '' : 's'}; ${result.message ?? 'nothing was enqueued'}`,
            );
          }
          if (result.status === 'conflict') {
            if (out.json) out.result(submitJson(result));
            throw new UsageError(`${file}: ${result.message ?? 'batch id conflict'}`);
          }
          if (!out.json) {
            out.info(submitSummary(result));
            // With skip-invalid, the rows it skipped; without, rows that lost a reference to a
            // batch submitted at the same moment (recorded as refused, never paid).
            if (opts.skipInvalid || result.errorCount > 0) {
              for (const line of formatBatchErrors(file, result.errors)) out.info(`  ${line}`);
            }
          }
          if (opts.wait && result.status !== 'validated' && result.batchId !== undefined) {
            const final = await waitWithProgress(ctx, app, result.batchId);
            out.result({ ...submitJson(result), batch: final }, () => statusLines(final));
          } else if (out.json) {
            out.result(submitJson(result));
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
        if (!status) throw new UsageError(`no batch "${id}"`);
        ctx.out().result(status, (v) => statusLines(v as BatchStatus));
      });
    });

  batch
    .command('results <batchId>')
    .description('per-row results as CSV (stdout, or -o file)')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .action(async (id: string, opts: { output?: string }) => {
      await withApp(ctx, async (app) => {
        if (!(await batchStatus(app, id))) throw new UsageError(`no batch "${id}"`);
        if (opts.output !== undefined) {
          await batchResults(app, id, createWriteStream(opts.output));
          ctx.out().info(`results of batch ${id} written to ${opts.output}`);
          return;
        }
        // stdout is not ended by the results writer: the CLI may print after it.
        const pass = new PassThrough();
        pass.pipe(ctx.stdout, { end: false });
        const drained = finished(pass);
        await batchResults(app, id, pass);
        await drained;
      });
    });
}
