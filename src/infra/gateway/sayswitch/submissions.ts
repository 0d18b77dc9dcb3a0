/**
 * Submissions, the calls that move money: card charges and payouts. What both answer alike (a
 * duplicate reference, a decline) is read in one place, {@link SayswitchSubmissions.submit}.
 */
import type { z } from 'zod';
import { formatMajor } from '../../../kernel/money.ts';
import type {
  ChargeRequest,
  GatewayOutcome,
  LookupOutcome,
  PayoutRequest,
} from '../../../kernel/ports.ts';
import type { SayswitchPaths } from './endpoints.ts';
import { duplicateLookupError, submissionNotFoundError } from './error-mapping/response-errors.ts';
import type { SayswitchLookups } from './lookups.ts';
import { chargeOutcome, declineReason, payoutOutcome } from './outcomes.ts';
import { chargeResponseSchema, payoutResponseSchema } from './schemas.ts';
import type { SayswitchTransport } from './transport.ts';

/** Charges and payouts; a duplicate reference is resolved through {@link SayswitchLookups}. */
export class SayswitchSubmissions {
  constructor(
    private readonly transport: SayswitchTransport,
    private readonly paths: Pick<SayswitchPaths, 'chargePath' | 'payoutPath'>,
    private readonly lookups: SayswitchLookups,
  ) {}

  /**
   * Charges an encrypted card token. A decline is a `failed` result; a 3-D Secure challenge is
   * `requires_action`; a duplicate reference adopts the existing reference's state.
   */
  async chargeCard(req: ChargeRequest): Promise<GatewayOutcome> {
    const payload: Record<string, unknown> = {
      amount: formatMajor(req.amount),
      card: req.cardToken,
      currency: req.currency,
      email: req.email,
      reference: req.reference,
    };
    if (req.narration !== undefined) payload.narration = req.narration;
    const path = this.paths.chargePath;
    return this.submit('charge', req.reference, path, payload, chargeResponseSchema, {
      lookup: () => this.lookups.verifyCharge(req.reference),
      ok: (body) => chargeOutcome(req.reference, body, path),
    });
  }

  /** Sends a payout. Sayswitch processes payouts asynchronously, so `pending` is the usual answer. */
  async payout(req: PayoutRequest): Promise<GatewayOutcome> {
    const payload: Record<string, unknown> = {
      account_name: req.accountName,
      account_number: req.accountNumber,
      amount: formatMajor(req.amount),
      bank_code: req.bankCode,
      bank_name: req.bankName,
      currency: req.currency,
      narration: req.narration,
      reference: req.reference,
    };
    // Required for KES/GHS; the NGN examples omit it, so NGN bank payouts keep to the examples.
    if (req.currency !== 'NGN' || req.paymentMode !== 'bank') payload.paymentMode = req.paymentMode;
    const path = this.paths.payoutPath;
    return this.submit('payout', req.reference, path, payload, payoutResponseSchema, {
      lookup: () => this.lookups.lookupPayout(req.reference),
      ok: (body) => payoutOutcome(req.reference, body.data, body.message, path),
    });
  }

  /**
   * Sends a submission and reads what charges and payouts answer alike: a duplicate (in any of
   * its shapes, error-mapping/ decides) adopts the existing reference's state (looked up), a
   * decline is a `failed` result; `ok` is the caller's (a duplicate answered with the original
   * transaction, `200-echo`, is read there like a first answer).
   * @throws DuplicateReferenceUnresolvedError (outcome_unknown, `referenceExists`) when the
   * duplicate's lookup finds nothing or gives no answer.
   */
  private async submit<S extends z.ZodType>(
    what: 'charge' | 'payout',
    reference: string,
    path: string,
    payload: Record<string, unknown>,
    schema: S,
    read: { lookup: () => Promise<LookupOutcome>; ok: (body: z.output<S>) => GatewayOutcome },
  ): Promise<GatewayOutcome> {
    const result = await this.transport.call({
      method: 'POST',
      template: path,
      path,
      operation: 'submission',
      reference,
      payload,
      schema,
    });
    switch (result.type) {
      case 'duplicate': {
        let found: LookupOutcome;
        try {
          found = await read.lookup();
        } catch (err) {
          throw duplicateLookupError(err);
        }
        return this.lookups.adoptDuplicate(reference, found);
      }
      case 'declined':
        return {
          reference,
          status: 'failed',
          reason: declineReason(result.message),
          ...(result.message !== undefined ? { message: result.message } : {}),
        };
      case 'not_found':
        // Not produced for submissions; kept for exhaustiveness.
        throw submissionNotFoundError(what);
      case 'ok':
        return read.ok(result.data);
    }
  }
}
