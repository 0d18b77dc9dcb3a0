/**
 * `billing payments resolve <key> --outcome succeeded|failed --note "…" [--force]`: the CLI side of
 * POST /payments/:key/resolve (payments/resolve.ts); who resolved it is `cli:<os user>`.
 */
import { cliIdentity } from '../../batches/approval.ts';
import { Option, type Command } from 'commander';
import {
  resolveDeps,
  resolvePayment,
  RESOLVE_OUTCOMES,
  type ResolveOutcome,
} from '../../payments/resolve.ts';
import { toView } from '../../payments/view.ts';
import { withApp, type CliContext } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';

export function registerPaymentsResolveCommand(payments: Command, ctx: CliContext) {
  payments
    .command('resolve <key-or-reference>')
    .description(
      'record what Sayswitch says of a needs_review payment (asks Sayswitch first; --force overrides it)',
    )
    .addOption(
      new Option('--outcome <outcome>', 'what happened')
        .choices(RESOLVE_OUTCOMES)
        .makeOptionMandatory(),
    )
    .requiredOption('--note <text>', 'what you checked (recorded in the history)')
    .option('--force', 'record the outcome even when Sayswitch disagrees or has no final answer')
    .action(
      async (
        reference: string,
        opts: { outcome: ResolveOutcome; note: string; force?: boolean },
      ) => {
        if (opts.note.trim() === '') throw new UsageError('--note must say what you checked');
        await withApp(ctx, async (app) => {
          const res = await resolvePayment(resolveDeps(app), reference, {
            outcome: opts.outcome,
            note: opts.note.trim(),
            force: opts.force === true,
            by: cliIdentity(),
          });
          if (res.status === 'not_found') {
            throw new UsageError(`no payment with key or reference "${reference}"`, {
              code: 'not_found',
            });
          }
          if (res.status !== 'resolved') {
            throw new CliError(res.message, {
              code: res.status,
              ...('gateway' in res ? { details: { gateway: res.gateway } } : {}),
            });
          }
          const view = toView(res.intent, await app.store.history(res.intent.key));
          ctx
            .out()
            .result(
              { ...view, resolution: { gateway: res.gateway, forced: res.forced } },
              () =>
                `${view.key}: ${view.state} (Sayswitch said ${res.gateway}${res.forced ? '; forced' : ''})`,
            );
        });
      },
    );
}
