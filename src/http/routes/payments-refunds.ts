/**
 * `POST /payments/:key/refunds` and `GET /payments/:key/refunds` (docs/refunds.md). The path
 * parameter is named `reference` like the other payment routes' (one parameter node in the
 * router) and takes the charge's key, a reference of it, or the caller's own key. The POST is a
 * write route of the access policy (http/auth.ts classifies it by method: API_TOKEN only), whose
 * name is recorded as who asked (`requestedBy`); the GET a read route.
 *
 * Validation is the zod schemas declared here (the CLI parses its flags with the same body
 * schema), in the routes' `schema:` and so in the OpenAPI document.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { controlCharacterMessage, NO_CONTROL } from '../../input/fields.ts';
import { minorAmountInputSchema } from '../../kernel/money.ts';
import { createRefund, type RefundDeps, type RefundResult } from '../../payments/refunds/create.ts';
import { chargeRefunds, toRefundView } from '../../payments/refunds/view.ts';
import { apiError } from '../errors.ts';
import { errorResponses, optionalBody } from '../schemas.ts';
import { paymentViewSchema } from './payments.ts';

/** The path: the charge, by key, reference or the caller's own key. */
export const refundParamsSchema = z.strictObject({
  reference: z.string().min(1).max(100),
});

/**
 * The body: an amount in minor units (absent: everything still refundable), a reason, and the
 * caller's idempotency key (`key`, as POST /payments takes it).
 */
export const refundBodySchema = z.strictObject({
  amount: minorAmountInputSchema.optional(),
  // One line of text: the CLI prints it to an operator's terminal (`billing payments refunds`).
  reason: z
    .string()
    .trim()
    .min(1, 'reason is empty')
    .max(200)
    .regex(NO_CONTROL, controlCharacterMessage('reason'))
    .optional(),
  key: z
    .string()
    .min(1, 'key is empty')
    .max(64, 'key is longer than 64 characters')
    .regex(/^[A-Za-z0-9_-]+$/, 'key may contain only letters, digits, "_" and "-"')
    .optional(),
});

/** What a refused refund answers: status and error body. Nothing was written. */
export function refundRefusal(
  reference: string,
  res: Exclude<RefundResult, { status: 'created' | 'existing' }>,
): { status: number; body: ReturnType<typeof apiError> } {
  switch (res.status) {
    case 'not_found':
      return {
        status: 404,
        body: apiError('not_found', `no payment with key or reference ${reference}`),
      };
    case 'not_refundable':
      return {
        status: 409,
        body: apiError(
          'not_refundable',
          `only a succeeded charge can be refunded; ${reference} is a ${res.type} in state ${res.state}`,
          { type: res.type, state: res.state },
        ),
      };
    case 'exceeds':
      return {
        status: 422,
        body: apiError(
          'refund_exceeds_charge',
          `a refund of ${res.requestedMinor} exceeds what is left to refund: ${res.chargedMinor - res.reservedMinor} of ${res.chargedMinor} (the rest is refunded or in flight)`,
          {
            chargedMinor: res.chargedMinor,
            reservedMinor: res.reservedMinor,
            requestedMinor: res.requestedMinor,
          },
        ),
      };
    case 'partial_not_supported':
      return {
        status: 422,
        body: apiError(
          'partial_refund_not_supported',
          `amount must be the whole charge (${res.chargedMinor}) or left out: partial refunds are off (SAYSWITCH_PARTIAL_REFUNDS)`,
          [{ field: 'amount', message: `must be ${res.chargedMinor} or absent` }],
        ),
      };
    case 'too_many':
      return {
        status: 422,
        body: apiError('too_many_refunds', `${reference} has the most refunds a charge may have`),
      };
    case 'conflict':
      return {
        status: 409,
        body: apiError(
          'key_reused',
          `key was already used for refund ${res.intent.key} with a different body`,
        ),
      };
  }
}

/** A refund: the payment view plus the charge it refunds, the caller's reason and who asked. */
const refundViewSchema = paymentViewSchema
  .extend({
    chargeKey: z.string(),
    reason: z.string().optional(),
    requestedBy: z
      .string()
      .optional()
      .describe(
        "who asked for the refund: the token's name (API_TOKEN) or cli:<os user>; absent on " +
          'refunds created before it was recorded',
      ),
  })
  .meta({ id: 'Refund' });

/** A charge's refunds and its totals, minor units. */
const chargeRefundsSchema = z
  .looseObject({
    chargeKey: z.string(),
    currency: z.string(),
    chargedMinor: z.int(),
    refundedMinor: z.int().describe('refunds Sayswitch confirmed'),
    inFlightMinor: z.int().describe('refunds reserved and not final'),
    refundableMinor: z.int(),
    status: z.enum(['not_refunded', 'partially_refunded', 'refunded']),
    refunds: z.array(refundViewSchema),
  })
  .meta({ id: 'ChargeRefunds' });

export function registerRefundRoutes(app: FastifyInstance, deps: RefundDeps) {
  app.post<{ Params: { reference: string }; Body: z.output<typeof refundBodySchema> | undefined }>(
    '/payments/:reference/refunds',
    {
      config: { invalid: { code: 'invalid_refund', message: 'the refund request is invalid' } },
      schema: {
        tags: ['payments'],
        summary:
          'Refund a succeeded charge, whole or in part (never more than charged; docs/refunds.md)',
        params: refundParamsSchema,
        body: optionalBody(refundBodySchema),
        response: {
          200: refundViewSchema.describe('the refund this key already created'),
          201: refundViewSchema,
          ...errorResponses(403, 404, 409, 422),
        },
      },
    },
    async (req, reply) => {
      const { amount, reason, key } = req.body ?? {};
      const res = await createRefund(deps, req.params.reference, {
        ...(amount !== undefined ? { amount } : {}),
        ...(reason !== undefined ? { reason } : {}),
        ...(key !== undefined ? { key } : {}),
        requestedBy: req.tokenName ?? 'API_TOKEN',
      });
      if (res.status === 'created' || res.status === 'existing') {
        return reply
          .code(res.status === 'created' ? 201 : 200)
          .send(toRefundView(res.intent, await deps.store.history(res.intent.key)));
      }
      const refusal = refundRefusal(req.params.reference, res);
      return reply.code(refusal.status).send(refusal.body);
    },
  );

  app.get<{ Params: { reference: string } }>(
    '/payments/:reference/refunds',
    {
      schema: {
        tags: ['payments'],
        summary: "A charge's refunds: charged, refunded, in flight and still refundable",
        params: refundParamsSchema,
        response: { 200: chargeRefundsSchema, ...errorResponses(403, 404, 422) },
      },
    },
    async (req, reply) => {
      const view = await chargeRefunds(deps, req.params.reference);
      if (!view) {
        return reply
          .code(404)
          .send(apiError('not_found', `no payment with key or reference ${req.params.reference}`));
      }
      return view;
    },
  );
}
