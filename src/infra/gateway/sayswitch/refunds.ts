/**
 * Refunds (docs/sayswitch-wire.md "Refunds", docs/refunds.md): `POST /api/v1/refund`, its status
 * by Sayswitch's `RF_…` reference, and the list of a transaction's refunds. Every answer goes
 * through the one transport and error mapping; a refund POST is a submission (ambiguity means
 * money may have gone back), the two reads are lookups.
 */
import { formatMajor } from '../../../kernel/money.ts';
import type { GatewayRefund, RefundRequest } from '../../../kernel/ports.ts';
import { fillTemplate, type SayswitchPaths } from './endpoints.ts';
import { duplicateUnresolvedError, noAnswerError } from './error-mapping/response-errors.ts';
import { refundListResponseSchema, refundResponseSchema, type RefundData } from './schemas.ts';
import { readStatusWord } from './status.ts';
import type { SayswitchTransport } from './transport.ts';

/**
 * A refund's status word: `success` and `pending` are documented; `failed` (and its kin) is read
 * as the gateway's word that nothing went back; any other word reads `pending`, so a refund is
 * never closed on a word we do not know.
 */
function refundStatus(word: string): GatewayRefund['status'] {
  switch (readStatusWord(word)) {
    case 'succeeded':
      return 'succeeded';
    case 'failed':
    case 'canceled':
      return 'failed';
    default:
      return 'pending';
  }
}

/** A refund as the port speaks of it. */
function toRefund(d: RefundData, message?: string): GatewayRefund {
  const out: GatewayRefund = { status: refundStatus(d.status) };
  if (d.reference !== undefined) out.gatewayReference = d.reference;
  if (d.transaction_reference !== undefined) out.transactionReference = d.transaction_reference;
  if (d.merchant_reference !== undefined) out.merchantReference = d.merchant_reference;
  if (d.amount !== undefined) out.amount = d.amount;
  const text = d.message ?? message;
  if (text !== undefined) out.message = text.slice(0, 200);
  return out;
}

export class SayswitchRefunds {
  constructor(
    private readonly transport: SayswitchTransport,
    private readonly paths: Pick<
      SayswitchPaths,
      'refundPath' | 'refundStatusPath' | 'refundListPath'
    >,
  ) {}

  /**
   * Asks for a refund. A refusal naming the transaction (422) is a `failed` refund; a duplicate
   * answer (a refund of the transaction already exists) proves something exists at the gateway
   * but not which refund it is: `outcome_unknown` with `referenceExists`, verified by the list.
   */
  async refund(req: RefundRequest): Promise<GatewayRefund> {
    const payload: Record<string, unknown> = {
      reference: req.transactionReference,
      merchant_reference: req.reference,
    };
    if (req.amount !== undefined) payload.amount = formatMajor(req.amount);
    if (req.reason !== undefined) payload.reason = req.reason;
    const path = this.paths.refundPath;
    const result = await this.transport.call({
      method: 'POST',
      template: path,
      path,
      operation: 'submission',
      reference: req.transactionReference,
      payload,
      schema: refundResponseSchema,
    });
    switch (result.type) {
      case 'ok':
        return toRefund(result.data.data, result.data.message);
      case 'declined':
        return {
          status: 'failed',
          ...(result.message !== undefined ? { message: result.message.slice(0, 200) } : {}),
        };
      case 'duplicate':
        throw duplicateUnresolvedError();
      case 'not_found':
        throw noAnswerError(`refund ${path}`);
    }
  }

  /** A refund by Sayswitch's reference; undefined when Sayswitch does not know it. */
  async refundStatus(gatewayReference: string): Promise<GatewayRefund | undefined> {
    const template = this.paths.refundStatusPath;
    const result = await this.transport.call({
      method: 'GET',
      template,
      path: fillTemplate(template, { reference: gatewayReference }),
      operation: 'lookup',
      reference: gatewayReference,
      schema: refundResponseSchema,
    });
    if (result.type === 'not_found') return undefined;
    if (result.type !== 'ok') throw noAnswerError(`refund status ${template}`);
    return toRefund(result.data.data, result.data.message);
  }

  /**
   * The refunds Sayswitch shows for a transaction. Items naming another transaction are dropped
   * (the list's filter is not documented). A list whose items do not say their transaction proves
   * nothing either way: no answer (`outcome_unknown`), so the refund keeps being checked and is
   * never resubmitted on it.
   */
  async refundsOf(transactionReference: string): Promise<GatewayRefund[]> {
    const template = this.paths.refundListPath;
    const result = await this.transport.call({
      method: 'GET',
      template,
      path: fillTemplate(template, { reference: transactionReference }),
      operation: 'lookup',
      reference: transactionReference,
      schema: refundListResponseSchema,
    });
    if (result.type === 'not_found') return [];
    if (result.type !== 'ok') throw noAnswerError(`refund list ${template}`);
    const data = result.data.data;
    const items = Array.isArray(data) ? data : data.data;
    if (items.some((d) => d.transaction_reference === undefined))
      throw noAnswerError(`refund list ${template} (items without transaction_reference)`);
    return items
      .filter((d) => d.transaction_reference === transactionReference)
      .map((d) => toRefund(d));
  }
}
