/**
 * `billing subs import <file.csv> | list | show <id> | pause|resume|cancel <id>` (docs/product.md
 * §3, docs/subscriptions.md): the same service as `/subscriptions`. Invalid input exits 2 with
 * the file, line and column of every problem.
 */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { SUBSCRIPTION_STATUSES, type SubscriptionStatus } from '../../subscriptions/record.ts';
import {
  applyAction,
  importSubscriptions,
  listSubscriptions,
  showSubscription,
  subscriptionServiceDeps,
  type ActionName,
  type SubscriptionView,
} from '../../subscriptions/service.ts';
import type { InputIssue } from '../../subscriptions/import.ts';
import { withApp, type CliContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { parseIntFlag } from '../parsers.ts';

const MAX_LISTED_ERRORS = 50;

function formatIssues(file: string, issues: readonly InputIssue[]): string {
  const lines = issues.slice(0, MAX_LISTED_ERRORS).map((i) => {
    const where = [
      i.line !== undefined ? `line ${i.line}` : undefined,
      i.column !== undefined ? `column ${i.column}` : undefined,
    ].filter(Boolean);
    return `  ${file}${where.length > 0 ? `: ${where.join(', ')}` : ''}: ${i.message}`;
  });
  const more = issues.length - lines.length;
  return [
    `${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}; nothing was imported`,
    ...lines,
    ...(more > 0 ? [`  … and ${more} more`] : []),
  ].join('\n');
}

const when = (iso: string | null) => iso ?? '-';

function summary(v: SubscriptionView): string {
  return [
    v.id.padEnd(24),
    v.status.padEnd(9),
    `${v.amount} ${v.currency}`.padEnd(16),
    `every ${v.interval_count} ${v.interval}`.padEnd(14),
    v.timezone.padEnd(20),
    `next ${when(v.next_charge_at)}`,
  ].join(' ');
}

function details(v: SubscriptionView): string {
  const lines = [
    `${v.id}  ${v.status}${v.cancel_reason ? ` (${v.cancel_reason})` : ''}`,
    `  customer        ${v.customer_email}`,
    `  amount          ${v.amount} ${v.currency} every ${v.interval_count} ${v.interval}`,
    `  anchor          ${v.anchor} (${v.timezone})`,
    `  current period  ${when(v.current_period_start)} → ${when(v.current_period_end)}`,
    `  next charge     ${when(v.next_charge_at)}`,
    ...(v.skipped_periods > 0
      ? [`  skipped         ${v.skipped_periods} periods (catch-up cap)`]
      : []),
    ...v.dunning.map(
      (d) =>
        `  dunning         ${d.key}: attempt ${d.attempt} ${d.reason}, retry ${d.retry} at ${d.retry_at}`,
    ),
    ...Object.entries(v.metadata).map(([k, val]) => `  meta_${k}`.padEnd(18) + val),
  ];
  if (v.charges && v.charges.length > 0) {
    lines.push('  recent charges');
    for (const c of v.charges)
      lines.push(
        `    ${c.key}  ${c.state}  attempt ${c.attempt}${c.reason ? `  ${c.reason}` : ''}`,
      );
  }
  return lines.join('\n');
}

function parseStatus(value: string): SubscriptionStatus {
  if (!(SUBSCRIPTION_STATUSES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--status must be one of ${SUBSCRIPTION_STATUSES.join(', ')}`);
  }
  return value as SubscriptionStatus;
}

/** Registers `billing subs …` (a `CommandRegistrar`). */
export function registerSubsCommands(program: Command, ctx: CliContext): void {
  const subs = program.command('subs').description('manage subscriptions');

  subs
    .command('import <file>')
    .description('import subscriptions from a CSV file (docs/subscriptions.md)')
    .action(async (file: string) => {
      let text: Buffer;
      try {
        text = await readFile(file);
      } catch (err) {
        throw new UsageError(
          `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
      await withApp(ctx, async (app) => {
        const res = await importSubscriptions(subscriptionServiceDeps(app), text);
        if (!res.ok) throw new UsageError(formatIssues(file, res.errors));
        ctx
          .out()
          .result(
            { file, rows: res.rows, created: res.created.length, existing: res.existing.length },
            () =>
              `${file}: ${res.rows} subscriptions, ${res.created.length} created, ` +
              `${res.existing.length} already present`,
          );
      });
    });

  subs
    .command('list')
    .description('list subscriptions by id')
    .option(
      '--status <status>',
      `only this status (${SUBSCRIPTION_STATUSES.join(', ')})`,
      parseStatus,
    )
    .option('--limit <n>', 'at most this many', parseIntFlag('--limit'), 50)
    .option('--after <id>', 'start after this id (the previous page’s last id)')
    .action(async (opts: { status?: SubscriptionStatus; limit: number; after?: string }) => {
      if (opts.limit < 1 || opts.limit > 1_000) throw new UsageError('--limit must be 1 to 1000');
      await withApp(ctx, async (app) => {
        const page = await listSubscriptions(subscriptionServiceDeps(app), opts);
        ctx
          .out()
          .result(page, () =>
            page.items.length === 0
              ? 'no subscriptions'
              : [
                  ...page.items.map(summary),
                  ...(page.next ? [`(more: --after ${page.next})`] : []),
                ].join('\n'),
          );
      });
    });

  subs
    .command('show <id>')
    .description('one subscription: schedule, status, dunning and recent charges')
    .action(async (id: string) => {
      await withApp(ctx, async (app) => {
        const view = await showSubscription(subscriptionServiceDeps(app), id);
        if (!view) throw new UsageError(`no subscription "${id}"`);
        ctx.out().result(view, (v) => details(v as SubscriptionView));
      });
    });

  const actions: [ActionName, string][] = [
    ['pause', 'stop billing new periods and pending dunning retries'],
    ['resume', 'bill again from the current period (paused periods are not billed)'],
    ['cancel', 'stop everything; a charge already sent still completes'],
  ];
  for (const [action, description] of actions) {
    subs
      .command(`${action} <id>`)
      .description(description)
      .action(async (id: string) => {
        await withApp(ctx, async (app) => {
          const res = await applyAction(subscriptionServiceDeps(app), id, action);
          if (res.status === 'not_found') throw new UsageError(`no subscription "${id}"`);
          if (res.status === 'refused') {
            throw new UsageError(`subscription "${id}" is canceled; it cannot be ${action}d`);
          }
          const view = {
            ...(await showSubscription(subscriptionServiceDeps(app), id)),
            changed: res.changed,
          };
          ctx.out().result(view, (v) => {
            const sv = v as SubscriptionView & { changed: boolean };
            return `${sv.changed ? '' : '(no change) '}${details(sv)}`;
          });
        });
      });
  }
}
