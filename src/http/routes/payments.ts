/**
 * `POST /payments`, `GET /payments` and `GET /payments/:reference` (docs/product.md §4,
 * docs/operations.md "Finding payments"). The access policy (http/auth.ts) guards them: the POST
 * takes API_TOKEN, the GETs API_READ_TOKEN or API_TOKEN. The POST body is described by the schema
 * derived from the instruction's field rules and validated by its parser (input/instruction-body.ts).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { INTENT_STATES, INTENT_TYPES } from '../../kernel/intent.ts';
import { instructionBodySchema } from '../../input/instruction-body.ts';
import { createPayment, type CreateDeps } from '../../payments/create.ts';
import { findPayment, toView } from '../../payments/view.ts';
import {
  listPayments,
  paymentListQuerySchema,
  type PaymentListQuery,
} from '../../payments/list.ts';
import { apiError } from '../errors.ts';
import { errorResponses, idParam, pageOf, parsedByHandler } from '../schemas.ts';

const money = { amount: z.string().describe('major units, e.g. "1500.50"'), amountMinor: z.int() };

/**
 * One payment (payments/view.ts `PaymentView`). Loose: a view may gain fields (described, not
 * enforced; http/openapi.ts).
 */
export const paymentViewSchema = z
  .looseObject({
    key: z.string(),
    type: z.enum(INTENT_TYPES),
    state: z.enum(INTENT_STATES),
    ...money,
    currency: z.string(),
    fee: z.string().optional(),
    reason: z.string().optional(),
    message: z.string().optional(),
    gatewayReference: z.string().optional(),
    authorizationUrl: z
      .string()
      .optional()
      .describe('while requires_action: where the customer completes 3-D Secure'),
    batchId: z.string().optional(),
    subscriptionId: z.string().optional(),
    afterDataLoss: z.iso
      .datetime()
      .optional()
      .describe(
        'set when the payment was created while a Redis data loss was unacknowledged: its ' +
          'references may predate the loss, so every refusal is verified',
      ),
    attempts: z.array(z.object({ reference: z.string(), state: z.enum(INTENT_STATES) })),
    history: z.array(
      z.looseObject({
        at: z.number().describe('epoch milliseconds'),
        from: z.enum(INTENT_STATES).nullable(),
        to: z.enum(INTENT_STATES),
        attempt: z.int(),
        reason: z.string().optional(),
        requestedBy: z
          .string()
          .optional()
          .describe("a refund's first line: who asked for it (the token's name or cli:<os user>)"),
      }),
    ),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Payment' });

/** One payment in a list (payments/list.ts `PaymentSummary`). */
const paymentSummarySchema = z
  .looseObject({
    key: z.string(),
    reference: z.string(),
    type: z.enum(INTENT_TYPES),
    state: z.enum(INTENT_STATES),
    ...money,
    currency: z.string(),
    reason: z.string().optional(),
    batchId: z.string().optional(),
    subscriptionId: z.string().optional(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'PaymentSummary' });

/** A page of payments; `unreadable` names those this version cannot read (payments/list.ts). */
const paymentPageSchema = pageOf(paymentSummarySchema).extend({
  unreadable: z
    .array(
      z.object({
        key: z.string(),
        why: z.string().describe('what is wrong: not JSON, or the fields that do not match'),
      }),
    )
    .optional()
    .describe(
      'payments on this page this version cannot read (another version wrote them, or a hand ' +
        'edit), left out of data; absent when there is none. Their keys are in the error log too.',
    ),
});

export function registerPaymentRoutes(app: FastifyInstance, deps: CreateDeps) {
  app.post(
    '/payments',
    {
      schema: {
        tags: ['payments'],
        summary: 'Create a charge or a payout (idempotent by key)',
        body: parsedByHandler(instructionBodySchema),
        response: {
          200: paymentViewSchema,
          201: paymentViewSchema,
          ...errorResponses(403, 409, 415, 422),
        },
      },
    },
    async (req, reply) => {
      const res = await createPayment(deps, req.body);
      switch (res.status) {
        case 'invalid':
          return reply
            .code(422)
            .send(apiError('invalid_payment', 'the payment instruction is invalid', res.issues));
        case 'conflict':
          return reply
            .code(409)
            .send(
              apiError(
                'key_reused',
                `key ${res.intent.key} was already used with a different body`,
              ),
            );
        case 'created':
        case 'existing':
          return reply
            .code(res.status === 'created' ? 201 : 200)
            .send(toView(res.intent, await deps.store.history(res.intent.key)));
      }
    },
  );

  app.get(
    '/payments',
    {
      config: { invalid: { code: 'invalid_query', message: 'the list query is invalid' } },
      schema: {
        tags: ['payments'],
        summary: 'Payments, newest first, filtered (cursor-paginated)',
        querystring: paymentListQuerySchema,
        response: { 200: paymentPageSchema, ...errorResponses(422) },
      },
    },
    async (req, reply) => {
      try {
        return await listPayments(deps.store, req.query as PaymentListQuery, req.log);
      } catch (err) {
        if (err instanceof RangeError) {
          return reply
            .code(422)
            .send(
              apiError('invalid_query', err.message, [{ field: 'cursor', message: err.message }]),
            );
        }
        throw err;
      }
    },
  );

  app.get<{ Params: { reference: string } }>(
    '/payments/:reference',
    {
      schema: {
        tags: ['payments'],
        summary: 'One payment by key, attempt reference, or your own key',
        params: idParam('reference', 'intent key, attempt reference, or your own key'),
        response: { 200: paymentViewSchema, ...errorResponses(404) },
      },
    },
    async (req, reply) => {
      const view = await findPayment(deps.store, req.params.reference);
      if (!view) {
        return reply
          .code(404)
          .send(apiError('not_found', `no payment with key or reference ${req.params.reference}`));
      }
      return view;
    },
  );
}
