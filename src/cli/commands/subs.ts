/**
 * (Just over 400 lines: every `billing subs` command, the test clock ones included, is registered
 * from this one file, with the flag parsing each needs.)
 *
 * `billing subs import <file.csv> | list | show <id> | update <id> | pause|resume|cancel|retry <id> |
 * clock create|show|advance|delete` (docs/product.md §3, docs/subscriptions.md): the same service as
 * `/subscriptions` and `/test-clocks`. Invalid input exits 2 with the file, line and column of
 * every problem, or the flag it came from.
 */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { emailSchema } from '../../input/fields.ts';
import type { FieldIssue } from '../../input/record.ts';
import {
  advanceTestClock,
  createTestClock,
  deleteTestClock,
  getTestClock,
  toClockView,
} from '../../subscriptions/clocks-service.ts';
import { instantSchema, type InputIssue } from '../../subscriptions/import.ts';
import { parseCancelBody, parsePauseBody } from '../../subscriptions/patch-input.ts';
import { SUBSCRIPTION_STATUSES, type SubscriptionStatus } from '../../subscriptions/record.ts';
import {
  applyAction,
  importSubscriptions,
  listSubscriptions,
  patchSubscription,
  REFUSAL_ERROR_CODE,
  showSubscription,
  subscriptionServiceDeps,
  PAST,
  type ActionName,
  type ActionOptions,
  type Refusal,
  type SubscriptionView,
} from '../../subscriptions/service.ts';
import { withApp, type CliContext } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { parseIntFlag } from '../parsers.ts';

const MAX_LISTED_ERRORS = 50;

function formatIssues(file: string, issues: readonly InputIssue[]): string[] {
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
  ];
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

/** `billing subs show`'s lines: one per set field (`--json` prints the view itself). */
export function subscriptionDetails(v: SubscriptionView): string[] {
  const lines = [
    `${v.id}  ${v.status}${v.cancel_reason ? ` (${v.cancel_reason})` : ''}`,
    `  customer        ${v.customer_email}`,
    `  amount          ${v.amount} ${v.currency} every ${v.interval_count} ${v.interval}`,
    `  anchor          ${v.anchor} (${v.timezone})`,
    `  current period  ${when(v.current_period_start)} → ${when(v.current_period_end)}`,
    `  next charge     ${when(v.next_charge_at)}`,
    // Why there is no next charge while a renewal's payment is unresolved (docs/subscriptions.md).
    ...(v.billing_held !== null
      ? [
          `  billing held    ${v.billing_held.key} (${v.billing_held.reference}) ${v.billing_held.state}, awaiting ${v.billing_held.awaiting} since ${v.billing_held.since}`,
        ]
      : []),
    ...(v.trial_end !== null ? [`  trial ends      ${v.trial_end}`] : []),
    ...(v.cancel_at_period_end ? [`  cancels at      ${when(v.cancel_at)} (period end)`] : []),
    ...(v.resume_at !== null ? [`  resumes at      ${v.resume_at}`] : []),
    ...(v.test_clock !== null ? [`  test clock      ${v.test_clock}`] : []),
    ...(v.skipped_periods > 0
      ? [`  skipped         ${v.skipped_periods} periods (catch-up cap)`]
      : []),
    ...v.dunning.map(
      (d) =>
        `  dunning         ${d.key}: attempt ${d.attempt} ${d.reason}, retry ${d.retry} at ${d.retry_at}`,
    ),
    // A long key still gets a space before its value.
    ...Object.entries(v.metadata).map(([k, val]) => `${`  meta_${k}`.padEnd(17)} ${val}`),
  ];
  if (v.charges && v.charges.length > 0) {
    lines.push('  recent charges');
    for (const c of v.charges)
      lines.push(
        `    ${c.key}  ${c.state}  attempt ${c.attempt}${c.reason ? `  ${c.reason}` : ''}`,
      );
  }
  return lines;
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
        if (!res.ok) {
          // As `batch submit`'s refused file: the problems by line and column in `--json`.
          throw new UsageError(formatIssues(file, res.errors), {
            code: 'invalid_input',
            details: { file, errors: res.errors },
          });
        }
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
    .option('--email <address>', "only this customer's (ignoring case)")
    .option('--limit <n>', 'at most this many', parseIntFlag('--limit'), 50)
    .option('--after <id>', 'start after this id (the previous page’s last id)')
    .action(
      async (opts: {
        status?: SubscriptionStatus;
        email?: string;
        limit: number;
        after?: string;
      }) => {
        if (opts.limit < 1 || opts.limit > 1_000) throw new UsageError('--limit must be 1 to 1000');
        const { email, ...rest } = opts;
        if (email !== undefined) {
          const parsed = emailSchema('--email').safeParse(email);
          if (!parsed.success) throw new UsageError(parsed.error.issues[0]?.message ?? '--email');
        }
        await withApp(ctx, async (app) => {
          const page = await listSubscriptions(subscriptionServiceDeps(app), {
            ...rest,
            ...(email !== undefined ? { customerEmail: email } : {}),
          });
          ctx
            .out()
            .result(page, () =>
              page.items.length === 0
                ? 'no subscriptions'
                : [
                    ...page.items.map(summary),
                    ...(page.next ? [`(more: --after ${page.next})`] : []),
                  ],
            );
        });
      },
    );

  subs
    .command('show <id>')
    .description('one subscription: schedule, status, dunning and recent charges')
    .action(async (id: string) => {
      await withApp(ctx, async (app) => {
        const view = await showSubscription(subscriptionServiceDeps(app), id);
        if (!view) throw notFound(`no subscription "${id}"`);
        ctx.out().result(view, (v) => subscriptionDetails(v as SubscriptionView));
      });
    });

  const actions: [ActionName, string][] = [
    ['pause', 'stop billing new periods and pending dunning retries (--resume-at: until then)'],
    ['resume', 'bill again from the current period (paused periods are not billed)'],
    [
      'cancel',
      'stop everything (--at-period-end: when the period paid for ends); a charge already sent still completes',
    ],
    [
      'retry',
      'retry a failed renewal now instead of at its scheduled retry (after a new card, say)',
    ],
  ];
  for (const [action, description] of actions) {
    const cmd = subs.command(`${action} <id>`).description(description);
    if (action === 'pause')
      cmd.option('--resume-at <instant>', 'resume by itself then (ISO 8601 with Z or an offset)');
    if (action === 'cancel')
      cmd.option('--at-period-end', 'cancel when the period paid for ends (undo: update --keep)');
    cmd.action(async (id: string, flags: { resumeAt?: string; atPeriodEnd?: boolean }) => {
      const opts = actionOptions(action, flags);
      await withApp(ctx, async (app) => {
        const deps = subscriptionServiceDeps(app);
        const res = await applyAction(deps, id, action, opts);
        if (res.status === 'not_found') throw notFound(`no subscription "${id}"`);
        if (res.status === 'invalid') throw invalidInput(res.issues);
        if (res.status === 'refused') throw refused(id, res.code, `it cannot be ${PAST[action]}`);
        await printChanged(ctx, deps, id, res.changed);
      });
    });
  }

  subs
    .command('update <id>')
    .description("change amount, currency, card, schedule, metadata or the trial's end")
    .option('--amount <major>', 'amount in major units, e.g. 1500.50 (from the next charge)')
    .option('--currency <code>', 'NGN, USD, GBP or EUR, with --amount; only between periods')
    .option('--card-token-file <file>', "read the new card token from a file ('-': stdin)")
    .option('--interval <unit>', 'day, week, month or year (from the next period)')
    .option('--interval-count <n>', 'units per period (from the next period)')
    .option('--anchor <instant>', 'new anchor: the next period starts then')
    .option('--meta <key=value...>', 'set metadata keys')
    .option('--unset-meta <key...>', 'remove metadata keys')
    .option('--cancel-at-period-end', 'cancel when the period paid for ends')
    .option('--keep', 'undo --cancel-at-period-end: keep billing')
    .option('--trial-end <instant>', "new end of the trial, during it ('now': end it now)")
    .action(async (id: string, flags: UpdateFlags) => {
      const body = await patchBody(flags);
      await withApp(ctx, async (app) => {
        const deps = subscriptionServiceDeps(app);
        const res = await patchSubscription(deps, id, body);
        if (res.status === 'not_found') throw notFound(`no subscription "${id}"`);
        if (res.status === 'invalid') throw invalidInput(res.issues);
        if (res.status === 'refused') throw refused(id, res.code);
        await printChanged(ctx, deps, id, res.changed);
      });
    });

  registerClockCommands(subs, ctx);
}

/** Names of the update flags by field, for messages about a field. */
const FLAG_OF: Record<string, string> = {
  amount: '--amount',
  currency: '--currency',
  card_token: '--card-token-file',
  interval: '--interval',
  interval_count: '--interval-count',
  anchor: '--anchor',
  metadata: '--meta',
  cancel_at_period_end: '--cancel-at-period-end',
  trial_end: '--trial-end',
  resume_at: '--resume-at',
  at_period_end: '--at-period-end',
};

/** No such subscription or test clock: exit 2 and code `not_found`, as `payments show`. */
function notFound(message: string): UsageError {
  return new UsageError(message, { code: 'not_found' });
}

function invalidInput(issues: readonly FieldIssue[]): UsageError {
  const lines = issues.map(
    (i) => `  ${i.field !== undefined ? `${FLAG_OF[i.field] ?? i.field}: ` : ''}${i.message}`,
  );
  return new UsageError(['invalid input:', ...lines], {
    code: 'invalid_input',
    details: issues,
  });
}

/**
 * A change the subscription's state refuses, with the HTTP API's 409 code. Exit 1, like a charge
 * not refundable in its state: the input was fine, the subscription is not in a state to take it
 * (docs/operations.md "Exit codes").
 */
const REFUSED: Record<Refusal, (id: string) => string> = {
  canceled: (id) => `subscription "${id}" is canceled`,
  charge_open: (id) =>
    `subscription "${id}" has a charge in flight or in dunning: its currency can change only between periods`,
  busy: (id) => `subscription "${id}" is being billed right now; try again in a moment`,
  test_clock_advancing: (id) =>
    `subscription "${id}" is on a test clock that is advancing; try again once it is ready`,
  paused: (id) =>
    `subscription "${id}" is paused: resume it first (a paused subscription runs no retries)`,
  nothing_to_retry: (id) =>
    `subscription "${id}" has no failed renewal to retry (it is in no dunning)`,
};

function refused(id: string, why: Refusal, consequence?: string): CliError {
  const message = REFUSED[why](id);
  return new CliError(why === 'canceled' && consequence ? `${message}; ${consequence}` : message, {
    code: REFUSAL_ERROR_CODE[why],
  });
}

function actionOptions(
  action: ActionName,
  flags: { resumeAt?: string; atPeriodEnd?: boolean },
): ActionOptions {
  if (action === 'pause' && flags.resumeAt !== undefined) {
    const body = parsePauseBody({ resume_at: flags.resumeAt });
    if (!body.ok) throw invalidInput(body.issues);
    return body.resumeAt !== undefined ? { resumeAt: body.resumeAt } : {};
  }
  if (action === 'cancel' && flags.atPeriodEnd === true) {
    const body = parseCancelBody({ at_period_end: true });
    if (!body.ok) throw invalidInput(body.issues);
    return { atPeriodEnd: true };
  }
  return {};
}

interface UpdateFlags {
  amount?: string;
  currency?: string;
  cardTokenFile?: string;
  interval?: string;
  intervalCount?: string;
  anchor?: string;
  meta?: string[];
  unsetMeta?: string[];
  cancelAtPeriodEnd?: boolean;
  keep?: boolean;
  trialEnd?: string;
}

async function readToken(file: string): Promise<string> {
  try {
    const text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
    return text.trim();
  } catch (err) {
    throw new UsageError(
      `--card-token-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text;
}

/** The `PATCH` body the flags ask for; validated by the service like an HTTP body. */
async function patchBody(flags: UpdateFlags): Promise<Record<string, unknown>> {
  if (flags.cancelAtPeriodEnd === true && flags.keep === true)
    throw new UsageError('--cancel-at-period-end and --keep contradict each other');
  const metadata: Record<string, string | null> = {};
  for (const kv of flags.meta ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--meta: "${kv}" must be key=value`);
    metadata[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  for (const key of flags.unsetMeta ?? []) metadata[key] = null;
  return {
    ...(flags.amount !== undefined ? { amount: flags.amount } : {}),
    ...(flags.currency !== undefined ? { currency: flags.currency } : {}),
    ...(flags.cardTokenFile !== undefined
      ? { card_token: await readToken(flags.cardTokenFile) }
      : {}),
    ...(flags.interval !== undefined ? { interval: flags.interval } : {}),
    ...(flags.intervalCount !== undefined ? { interval_count: flags.intervalCount } : {}),
    ...(flags.anchor !== undefined ? { anchor: flags.anchor } : {}),
    ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
    ...(flags.cancelAtPeriodEnd === true ? { cancel_at_period_end: true } : {}),
    ...(flags.keep === true ? { cancel_at_period_end: false } : {}),
    ...(flags.trialEnd !== undefined ? { trial_end: flags.trialEnd } : {}),
  };
}

async function printChanged(
  ctx: CliContext,
  deps: ReturnType<typeof subscriptionServiceDeps>,
  id: string,
  changed: boolean,
): Promise<void> {
  const view = { ...(await showSubscription(deps, id)), changed };
  ctx.out().result(view, (v) => {
    const sv = v as SubscriptionView & { changed: boolean };
    const [first = '', ...rest] = subscriptionDetails(sv);
    return [`${sv.changed ? '' : '(no change) '}${first}`, ...rest];
  });
}

/** `billing subs clock create|show|advance|delete` (test mode only). */
function registerClockCommands(subs: Command, ctx: CliContext): void {
  const clock = subs
    .command('clock')
    .description('test clocks (test mode only: a sk_test_ SAYSWITCH_SECRET_KEY)');
  // Called in the actions (not a flag's parser, which commander would print): a usage error.
  const instant = (flag: string) => (value: string) => {
    const parsed = instantSchema(flag).safeParse(value);
    if (!parsed.success) throw new UsageError(parsed.error.issues[0]?.message ?? flag);
    return parsed.data;
  };
  const inTestMode = async <T>(
    fn: (deps: ReturnType<typeof subscriptionServiceDeps>) => Promise<T>,
  ) =>
    withApp(ctx, async (app) => {
      const deps = subscriptionServiceDeps(app);
      if (!deps.testMode)
        throw new UsageError(
          'test clocks exist only in test mode (a sk_test_ SAYSWITCH_SECRET_KEY)',
        );
      return fn(deps);
    });
  const print = (v: ReturnType<typeof toClockView>) =>
    ctx
      .out()
      .result(
        v,
        () =>
          `${v.id}  ${v.status}  ${v.frozen_time}${v.advancing_to ? ` → ${v.advancing_to}` : ''}`,
      );

  clock
    .command('create <frozen_time>')
    .description('a new test clock at that instant')
    .option('--name <name>', 'a label')
    .action(async (frozenTime: string, flags: { name?: string }) => {
      const at = instant('frozen_time')(frozenTime);
      await inTestMode(async (deps) =>
        print(toClockView(await createTestClock(deps, at, flags.name))),
      );
    });

  clock
    .command('show <id>')
    .description('the clock: its time and whether it is advancing or ready')
    .action(async (id: string) => {
      await inTestMode(async (deps) => {
        const c = await getTestClock(deps, id);
        if (!c) throw notFound(`no test clock "${id}"`);
        print(toClockView(c));
      });
    });

  clock
    .command('advance <id> <to>')
    .description('advance the clock (the scheduler role runs what falls due); see clock show')
    .action(async (id: string, to: string) => {
      const at = instant('to')(to);
      await inTestMode(async (deps) => {
        const res = await advanceTestClock(deps, id, at);
        if (res.status === 'not_found') throw notFound(`no test clock "${id}"`);
        if (res.status === 'advancing')
          throw new CliError(`test clock "${id}" is advancing; try again once it is ready`, {
            code: 'test_clock_advancing',
          });
        if (res.status === 'invalid') throw invalidInput([res.issue]);
        print(toClockView(res.clock));
      });
    });

  clock
    .command('delete <id>')
    .description('delete a ready clock; its subscriptions are canceled (and kept)')
    .action(async (id: string) => {
      await inTestMode(async (deps) => {
        const res = await deleteTestClock(deps, id);
        if (res.status === 'not_found') throw notFound(`no test clock "${id}"`);
        if (res.status === 'advancing')
          throw new CliError(`test clock "${id}" is advancing; try again once it is ready`, {
            code: 'test_clock_advancing',
          });
        const view = { id: res.id, deleted: true, canceled_subscriptions: res.canceled };
        ctx
          .out()
          .result(
            view,
            () =>
              `${res.id}  deleted  ${res.canceled.length} subscription(s) canceled${res.canceled.length > 0 ? `: ${res.canceled.join(', ')}` : ''}`,
          );
      });
    });
}
