/** `billing payments show <reference>`. */
import type { Command } from 'commander';
import { findPayment, type PaymentView } from '../../payments/view.ts';
import { withApp, type CliContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { registerPaymentsAdminCommands } from './payments-admin.ts';
import { registerPaymentsRefundCommands } from './payments-refunds.ts';
import { registerPaymentsResolveCommand } from './payments-resolve.ts';

function human(v: unknown): string[] {
  const p = v as PaymentView;
  return [
    `${p.key}  ${p.type}  ${p.amount} ${p.currency}  ${p.state}${p.reason ? ` (${p.reason})` : ''}`,
    ...p.attempts.map((a) => `  attempt ${a.reference}: ${a.state}`),
    '  history:',
    ...p.history.map(
      (h) =>
        `    ${new Date(h.at).toISOString()}  ${h.from ?? '-'} → ${h.to}  #${h.attempt}${h.reason ? `  ${h.reason}` : ''}`,
    ),
  ];
}

export function registerPaymentsCommands(program: Command, ctx: CliContext) {
  const payments = program.command('payments').description('find, inspect and resolve payments');
  registerPaymentsAdminCommands(payments, ctx);
  registerPaymentsResolveCommand(payments, ctx);
  registerPaymentsRefundCommands(payments, ctx);
  payments
    .command('show <reference>')
    .description("one payment's state, attempts and history, by intent key or attempt reference")
    .action(async (reference: string) => {
      await withApp(ctx, async (app) => {
        const view = await findPayment(app.store, reference);
        if (!view) {
          throw new UsageError(`no payment with key or reference "${reference}"`, {
            code: 'not_found',
          });
        }
        ctx.out().result(view, human);
      });
    });
}
