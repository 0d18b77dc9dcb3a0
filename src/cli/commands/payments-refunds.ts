/**
 * `billing payments refund <key> [--amount <minor>] [--reason …] [--key …]` and `billing payments
 * refunds <key>`: the CLI side of POST and GET /payments/:key/refunds (docs/refunds.md), with the
 * same validation and the same refusals. `--json` prints one document; logs go to stderr. A refusal
 * of what was asked (no such payment, more than is left, a partial refund while they are off, the
 * most refunds a charge may have, a `--key` reused with another body) exits 2 with the HTTP
 * error's code; a charge that is not refundable in its state exits 1. Who asked is recorded as
 * `cli:<os user>` (`requestedBy`).
 */
import type { Command } from 'commander';
import { cliIdentity } from '../../batches/approval.ts';
import { createRefund, refundDeps } from '../../payments/refunds/create.ts';
import {
  chargeRefunds,
  major,
  toRefundView,
  type ChargeRefundsView,
  type RefundView,
} from '../../payments/refunds/view.ts';
import { refundBodySchema, refundRefusal } from '../../http/routes/payments-refunds.ts';
import { withApp, type CliContext } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';

function refundLine(r: RefundView): string {
  return `${r.key}  ${r.amount} ${r.currency}  ${r.state}${r.reason ? `  "${r.reason}"` : ''}${r.requestedBy ? `  requested by ${r.requestedBy}` : ''}`;
}

function summary(v: unknown): string[] {
  const s = v as ChargeRefundsView;
  return [
    `${s.chargeKey}: ${s.status}; charged ${major(s.chargedMinor)} ${s.currency}, refunded ${major(s.refundedMinor)}, in flight ${major(s.inFlightMinor)}, refundable ${major(s.refundableMinor)}`,
    ...s.refunds.map((r) => `  ${refundLine(r)}`),
  ];
}

export function registerPaymentsRefundCommands(payments: Command, ctx: CliContext) {
  payments
    .command('refund <key-or-reference>')
    .description('refund a succeeded charge, all that is left or --amount of it')
    .option('--amount <minor>', 'minor units to refund (default: everything still refundable)')
    .option('--reason <text>', 'why (kept with the refund, sent to Sayswitch)')
    .option('--key <key>', 'idempotency key: the same key returns the same refund')
    .action(async (reference: string, opts: { amount?: string; reason?: string; key?: string }) => {
      if (opts.amount !== undefined && !/^\d+$/.test(opts.amount))
        throw new UsageError('--amount must be a whole number of minor units', {
          code: 'invalid_refund',
        });
      const body = refundBodySchema.safeParse({
        ...(opts.amount !== undefined ? { amount: Number(opts.amount) } : {}),
        ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
        ...(opts.key !== undefined ? { key: opts.key } : {}),
      });
      if (!body.success) {
        const first = body.error.issues[0];
        throw new UsageError(
          `--${first?.path.join('.') ?? 'input'}: ${first?.message ?? 'invalid'}`,
          { code: 'invalid_refund' },
        );
      }
      await withApp(ctx, async (app) => {
        const { amount, reason, key } = body.data;
        const res = await createRefund(refundDeps(app), reference, {
          ...(amount !== undefined ? { amount } : {}),
          ...(reason !== undefined ? { reason } : {}),
          ...(key !== undefined ? { key } : {}),
          requestedBy: cliIdentity(),
        });
        if (res.status !== 'created' && res.status !== 'existing') {
          const { body: err } = refundRefusal(reference, res);
          const opts = {
            code: err.error.code,
            ...(err.error.details !== undefined ? { details: err.error.details } : {}),
          };
          // What the input asked for is refused (HTTP 404/409/422): exit 2. A charge that is
          // not (yet) refundable is the payment's state, not the input: exit 1.
          if (res.status === 'not_refundable') throw new CliError(err.error.message, opts);
          throw new UsageError(err.error.message, opts);
        }
        const view = toRefundView(res.intent, await app.store.history(res.intent.key));
        ctx
          .out()
          .result(
            { ...view, created: res.status === 'created' },
            () => `${res.status === 'created' ? 'refund' : 'existing refund'} ${refundLine(view)}`,
          );
      });
    });

  payments
    .command('refunds <key-or-reference>')
    .description("a charge's refunds: refunded, in flight and still refundable")
    .action(async (reference: string) => {
      await withApp(ctx, async (app) => {
        const view = await chargeRefunds({ store: app.store, refunds: app.refunds }, reference);
        if (!view) {
          throw new UsageError(`no payment with key or reference "${reference}"`, {
            code: 'not_found',
          });
        }
        ctx.out().result(view, summary);
      });
    });
}
