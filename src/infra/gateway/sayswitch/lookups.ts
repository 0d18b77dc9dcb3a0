/**
 * Lookups by reference: verify a charge, look a payout up, and adopt what a lookup finds when a
 * submission was refused as a duplicate (docs/sayswitch-wire.md "Duplicate reference").
 */
import type { GatewayOutcome, LookupOutcome } from '../../../kernel/ports.ts';
import type { Logger } from '../../logger.ts';
import { fillTemplate, type SayswitchPaths } from './endpoints.ts';
import { duplicateUnresolvedError, noAnswerError } from './error-mapping/response-errors.ts';
import { payoutOutcome, readAuthorization, transactionOutcome } from './outcomes.ts';
import { payoutResponseSchema, verifyResponseSchema } from './schemas.ts';
import type { SayswitchTransport } from './transport.ts';

/**
 * Verify and payout lookup; a 404 with a gateway envelope, or a 200 failure envelope saying the
 * reference is not found (error-mapping/wording.ts), is `not_found`, an answer.
 */
export class SayswitchLookups {
  constructor(
    private readonly transport: SayswitchTransport,
    private readonly paths: Pick<SayswitchPaths, 'verifyPath' | 'payoutLookupPath'>,
    private readonly logger: Logger | undefined,
  ) {}

  /** Looks a charge up by reference; `not_found` when Sayswitch has never seen it. */
  async verifyCharge(reference: string): Promise<LookupOutcome> {
    const template = this.paths.verifyPath;
    const result = await this.transport.call({
      method: 'GET',
      template,
      path: fillTemplate(template, { reference }),
      operation: 'lookup',
      reference,
      schema: verifyResponseSchema,
    });
    if (result.type === 'not_found') return { status: 'not_found', reference };
    if (result.type !== 'ok') throw noAnswerError(`verify ${template}`);
    const body = result.data;
    return transactionOutcome(
      reference,
      body.data,
      body.message,
      template,
      readAuthorization(body),
    );
  }

  /** Looks a payout up by reference; `not_found` when Sayswitch has never seen it. */
  async lookupPayout(reference: string): Promise<LookupOutcome> {
    const template = this.paths.payoutLookupPath;
    const result = await this.transport.call({
      method: 'GET',
      template,
      path: fillTemplate(template, { reference }),
      operation: 'lookup',
      reference,
      schema: payoutResponseSchema,
    });
    if (result.type === 'not_found') return { status: 'not_found', reference };
    if (result.type !== 'ok') throw noAnswerError(`payout lookup ${template}`);
    return payoutOutcome(reference, result.data.data, result.data.message, template);
  }

  /**
   * What a duplicate submission resolves to: the state the lookup `found` for the reference.
   * @throws DuplicateReferenceUnresolvedError (outcome_unknown, `duplicate_reference_unresolved`,
   * `referenceExists: true`) when the lookup found nothing: the gateway has the reference (it
   * said so) but does not show it yet, so this is never a plain not-found.
   */
  adoptDuplicate(reference: string, found: LookupOutcome): GatewayOutcome {
    if (found.status === 'not_found') throw duplicateUnresolvedError();
    this.logger?.info(
      { reference, status: found.status },
      'duplicate reference adopted from lookup',
    );
    return found;
  }
}
