/**
 * `billing payments list` and `billing payments reindex`: the CLI side of GET /payments
 * (payments/list.ts) and the one-off index backfill after upgrading (docs/operations.md,
 * "Finding payments").
 */
import type { Command } from 'commander';
import { CURRENCIES } from '../../kernel/money.ts';
import { listPayments, paymentListQuerySchema, type PaymentList } from '../../payments/list.ts';
import { withApp, type CliContext } from '../context.ts';
import { CliError, unreadableRecordsMessage, UsageError, withCursorFlag } from '../errors.ts';
import { formatPage, printable } from '../output.ts';

function human(v: unknown): string[] {
  const { data, unreadable, next_cursor } = v as PaymentList;
  const rows = data.map((p) => [p.key, p.type, `${p.amount} ${p.currency}`, p.state, p.createdAt]);
  return [
    ...formatPage(rows, next_cursor, 'no payments'),
    ...(unreadable ?? []).map(
      (u) => `cannot be read by this version (left out): ${printable(u.key)}: ${printable(u.why)}`,
    ),
  ];
}

export function registerPaymentsAdminCommands(payments: Command, ctx: CliContext) {
  payments
    .command('list')
    .description('a page of payments, newest first (filters as GET /payments)')
    .option(
      '--state <state>',
      'queued, submitting, pending, requires_action, unknown, succeeded, …',
    )
    .option('--type <type>', 'charge or payout')
    .option('--batch <id>', "one batch's rows, by line")
    .option('--subscription <id>', "one subscription's renewals")
    .option('--currency <code>', CURRENCIES.join(', '))
    .option('--email <address>', "a charge's customer (any case)")
    .option('--created-after <date>', 'ISO date or instant (inclusive)')
    .option('--created-before <date>', 'ISO date or instant (inclusive)')
    .option('--limit <n>', 'page size, 1-200', '50')
    .option('--cursor <cursor>', 'the next page of a previous list')
    .action(async (opts: Record<string, string | undefined>) => {
      const q = paymentListQuerySchema.safeParse({
        ...(opts.state ? { state: opts.state } : {}),
        ...(opts.type ? { type: opts.type } : {}),
        ...(opts.batch ? { batch: opts.batch } : {}),
        ...(opts.subscription ? { subscription: opts.subscription } : {}),
        ...(opts.currency ? { currency: opts.currency } : {}),
        ...(opts.email ? { email: opts.email } : {}),
        ...(opts.createdAfter ? { created_after: opts.createdAfter } : {}),
        ...(opts.createdBefore ? { created_before: opts.createdBefore } : {}),
        limit: opts.limit,
        ...(opts.cursor ? { cursor: opts.cursor } : {}),
      });
      if (!q.success) {
        const flag = (f: string) => `--${f.replace(/_/g, '-')}`;
        throw new UsageError(
          q.error.issues.map((i) => `${flag(i.path.join('.'))}: ${i.message}`).join('; '),
          { code: 'invalid_input' },
        );
      }
      await withApp(ctx, async (app) => {
        ctx
          .out()
          .result(await withCursorFlag(() => listPayments(app.store, q.data, app.logger)), human);
      });
    });

  payments
    .command('reindex')
    .description('add payments stored before list indexes existed to them (once, after upgrading)')
    .action(async () => {
      await withApp(ctx, async (app) => {
        const counts = await app.store.reindexCreated();
        ctx
          .out()
          .result(counts, () =>
            counts.unreadableRecords > 0
              ? `${counts.indexed} payments indexed, ${counts.unreadableRecords} not (cannot be read)`
              : `${counts.indexed} payments indexed`,
          );
        const unreadable = unreadableRecordsMessage(counts);
        if (unreadable !== undefined) {
          throw new CliError(unreadable, {
            code: 'unreadable_records',
            details: { unreadableRecordsAt: counts.unreadableRecordsAt },
          });
        }
      });
    });
}
