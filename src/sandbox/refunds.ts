/**
 * Refunds (docs/sayswitch-wire.md "Refunds"): `POST /api/v1/refund`, `GET /api/v1/refund`
 * (optionally `?reference=` of a transaction) and `GET /api/v1/refund/status/{RF_…}`, with the
 * refund unknowns (`refundPartial`, `refundCallerReference`, `refundSettleMs`) and the injected
 * `refundFault`. The sandbox never gives back more than a transaction moved: a refund beyond what
 * is left is refused, whatever the unknowns say.
 */
import { z } from 'zod';
import type { LedgerStore, RefundEntry } from './ledger.ts';
import type { RefundFault, Unknowns } from './options.ts';
import type { TimerRegistry } from './timers.ts';
import { INTERNAL_ERROR, fail, iso, major, validationFailure, type ApiResult } from './wire.ts';
import { parseGatewayAmount } from '../kernel/money.ts';

export const refundSchema = z.object({
  reference: z.string().min(1).max(64),
  amount: z
    .union([z.string(), z.number()])
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const minor = parseGatewayAmount(v);
      if (minor === undefined || minor === 0) {
        ctx.addIssue({ code: 'custom', message: 'must be a positive amount in major units' });
        return z.NEVER;
      }
      return minor;
    }),
  merchant_reference: z.string().min(1).max(64).optional(),
  reason: z.string().max(200).optional(),
});

export interface SandboxRefundsDeps {
  ledger: LedgerStore;
  timers: TimerRegistry;
  unknowns: Unknowns;
  fault: RefundFault;
  hangMs: number;
  now: () => number;
  /** Hides a new refund from the lookups for `lookupLagMs`. */
  hide: (rf: string) => void;
  /** Whether a hidden refund is still hidden. */
  hidden: (rf: string) => boolean;
}

/** The refund as Sayswitch's refund endpoints show it. */
function refundData(rf: string, r: RefundEntry, honoured: boolean): Record<string, unknown> {
  return {
    refund_id: r.refundId,
    reference: rf,
    transaction_reference: r.transactionReference,
    ...(honoured && r.merchantReference !== undefined
      ? { merchant_reference: r.merchantReference }
      : {}),
    amount: major(r.amount),
    currency: r.currency,
    status: r.status,
    created_at: iso(r.createdAtMs),
  };
}

export class SandboxRefunds {
  /** Transactions whose first refund request met the fault already. */
  private readonly faulted = new Set<string>();

  constructor(private readonly deps: SandboxRefundsDeps) {}

  /** `POST /api/v1/refund`. */
  refund(payload: unknown): ApiResult {
    const parsed = refundSchema.safeParse(payload);
    if (!parsed.success) return validationFailure(parsed.error);
    const p = parsed.data;
    const { ledger, unknowns } = this.deps;
    const honoured = unknowns.refundCallerReference === 'honoured';
    if (honoured && p.merchant_reference !== undefined) {
      // The same merchant_reference again: the refund it created, nothing new.
      const seen = ledger.refundByMerchantReference(p.merchant_reference);
      if (seen) return this.answer(seen[0], seen[1]);
    }
    const t = ledger.get(p.reference);
    if (!t || t.kind !== 'charge') return fail(404, 'Transaction not found');
    if (t.status !== 'success') return fail(400, 'Only a successful transaction can be refunded');
    const fault = this.faulted.has(p.reference) ? 'none' : this.deps.fault;
    if (fault !== 'none') this.faulted.add(p.reference);
    if (fault === 'unrecorded-500') return INTERNAL_ERROR;

    const left = ledger.refundableMinor(p.reference);
    if (left <= 0) return fail(400, 'Transaction has been fully refunded');
    let amount = left;
    if (p.amount !== undefined) {
      if (unknowns.refundPartial === 'rejected' && p.amount !== t.amount)
        return fail(400, 'Partial refunds are not supported');
      if (unknowns.refundPartial === 'supported') amount = p.amount;
      if (amount > left) return fail(400, 'Refund amount exceeds the refundable balance');
    }
    const rf = `RF_${String(ledger.refundCount + 1).padStart(8, '0')}`;
    const entry: RefundEntry = {
      refundId: ledger.refundCount + 1,
      transactionReference: p.reference,
      ...(honoured && p.merchant_reference !== undefined
        ? { merchantReference: p.merchant_reference }
        : {}),
      amount,
      currency: t.currency,
      status: 'pending',
      createdAtMs: this.deps.now(),
    };
    ledger.recordRefund(rf, entry);
    this.deps.hide(rf);
    this.deps.timers.after(unknowns.refundSettleMs, () => ledger.settleRefund(rf, 'success'));
    const answer = this.answer(rf, entry);
    if (fault === 'lost-response') return INTERNAL_ERROR;
    if (fault === 'hang') return { ...answer, holdMs: this.deps.hangMs };
    return answer;
  }

  /** `GET /api/v1/refund/status/{rf}`. */
  status(rf: string): ApiResult {
    const r = this.deps.hidden(rf) ? undefined : this.deps.ledger.refund(rf);
    if (!r) {
      return this.deps.unknowns.notFound === '404'
        ? fail(404, 'Refund not found')
        : fail(200, 'Refund not found');
    }
    return {
      status: 200,
      body: { success: true, message: 'Refund retrieved', data: this.data(rf, r) },
    };
  }

  /** `GET /api/v1/refund[?reference=]`: every refund, or a transaction's. */
  list(transactionReference: string | undefined): ApiResult {
    const { ledger } = this.deps;
    const all =
      transactionReference === undefined
        ? Object.entries(ledger.snapshot().refunds)
        : ledger.refundsOf(transactionReference);
    const data = all.filter(([rf]) => !this.deps.hidden(rf)).map(([rf, r]) => this.data(rf, r));
    return { status: 200, body: { success: true, message: 'Refunds retrieved', data } };
  }

  private answer(rf: string, r: RefundEntry): ApiResult {
    return {
      status: 200,
      body: {
        success: true,
        message: 'Refund submitted and in progress',
        data: this.data(rf, r),
      },
    };
  }

  private data(rf: string, r: RefundEntry): Record<string, unknown> {
    return refundData(rf, r, this.deps.unknowns.refundCallerReference === 'honoured');
  }
}
